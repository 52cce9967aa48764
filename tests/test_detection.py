"""The EAN detection configs through tools/train.py and tools/test.py on generated data: train a
few iterations, save, resume, evaluate; distributed training; clear errors."""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from conftest import ROOT, load_tool, run_tool
from mmengine.config import Config, DictAction

from ean_mm.utils import InputError, check_config_inputs, exit_on_input_error, load_config

SIZE = 256  # generated images: shapes >= 32 px, so VOC's bbox_min_size filter keeps them
INPUT = 160  # the detectors' input size in these runs
COCO_NAMES = ['person', 'bicycle', 'car']
VOC_NAMES = ['aeroplane', 'bicycle', 'bird']
METRIC = {'coco': r'coco/bbox_mAP: [\d.]+ +coco/bbox_mAP_50: [\d.]+ +coco/bbox_mAP_75: [\d.]+',
          'voc': r'pascal_voc/mAP: [\d.]+'}


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp('det_data')
    for fmt, names in (('coco', COCO_NAMES), ('voc', VOC_NAMES)):
        run_tool('tools/misc/make_synthetic_data.py', str(root / fmt), '--formats', fmt,
                 '--num-train', '4', '--num-val', '2', '--img-size', str(SIZE),
                 '--classes', *names)
    coco = root / 'coco' / 'coco'
    for split in ('train', 'val'):  # list all 80 categories, as the real COCO files do
        add_coco_categories(coco / 'annotations' / f'instances_{split}2017.json')
    return {'coco': coco, 'voc': root / 'voc' / 'VOCdevkit'}


def add_coco_categories(ann_file: Path) -> None:
    from mmdet.datasets import CocoDataset
    ann = json.loads(ann_file.read_text())
    present = {c['name'] for c in ann['categories']}
    next_id = max(c['id'] for c in ann['categories']) + 1
    for name in CocoDataset.METAINFO['classes']:
        if name not in present:
            ann['categories'].append(dict(id=next_id, name=name, supercategory='none'))
            next_id += 1
    ann_file.write_text(json.dumps(ann))


def _leaf_datasets(node: dict, key: str):
    if 'dataset' in node:
        yield from _leaf_datasets(node['dataset'], f'{key}.dataset')
    elif 'datasets' in node:
        for i, ds in enumerate(node['datasets']):
            yield from _leaf_datasets(ds, f'{key}.datasets.{i}')
    else:
        yield key, node


def small_run_options(config: str, data_root: Path, iters: int = 1,
                      validate: bool = True, pretrained: bool = False) -> List[str]:
    """``--cfg-options`` that point ``config`` at the generated data and make the run tiny
    (``iters`` iterations, a checkpoint at the end, validation at the end if ``validate``, the
    backbone's ImageNet init only if ``pretrained``), leaving everything else as the config has
    it."""
    cfg = Config.fromfile(str(ROOT / config))
    opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}', 'default_hooks.logger.interval=1',
            'train_dataloader.batch_size=2']
    if not pretrained:
        opts.append('model.backbone.init_cfg=None')
    # Low score threshold: a detector a few iterations old still outputs boxes to evaluate.
    opts.append('model.test_cfg.rcnn.score_thr=0.0' if 'rcnn' in cfg.model.test_cfg
                else 'model.test_cfg.score_thr=0.0')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
        for key, ds in _leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset'):
            opts.append(f'{key}.data_root={data_root}/')
            for i, step in enumerate(ds['pipeline']):
                if step['type'] == 'Resize':
                    opts.append(f'{key}.pipeline.{i}.scale=({INPUT},{INPUT})')
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if cfg[evaluator]['type'] == 'CocoMetric':
            opts.append(f'{evaluator}.ann_file={data_root}/annotations/instances_val2017.json')
    if not validate:  # mmengine validates after the last iteration unless there is no val loop
        opts += ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    return opts


def last_iteration(checkpoint: Path) -> int:
    import torch
    return torch.load(checkpoint, map_location='cpu', weights_only=True)['meta']['iter']


def train_from_public_weights(config: str, data_root: Path, work: Path, public_weights,
                              validate: bool) -> str:
    """tools/train.py of ``config`` for one iteration from the public weights it names
    (torchvision://resnet50 from torch's cache; the MobileNeXt authors' weights converted), as
    a user runs it; returns the log. EAN starts as the plain network."""
    opts = small_run_options(config, data_root, iters=1, validate=validate, pretrained=True)
    if 'mobilenext' in config:
        opts.append(f'model.backbone.init_cfg.checkpoint={public_weights["mobilenext"]}')
    out = run_tool('tools/train.py', config, '--work-dir', str(work), '--cfg-options', *opts,
                   env=dict(TORCH_HOME=str(public_weights['torch_home'])))
    layers = 20 if 'mobilenext' in config else 16
    assert f'plain checkpoint, {layers} EAN layers start as the plain network' in out.stdout
    assert last_iteration(work / 'iter_1.pth') == 1
    return out.stdout + out.stderr


@pytest.mark.slow
def test_train_resume_test(data, public_weights, tmp_path):
    # SSDLite on VOC: train, resume, validate, test; Faster R-CNN on COCO below; SSDLite on COCO
    # in test_two_process_distributed_training.
    config, fmt = 'configs/ssdlite320_ean_mobilenext_voc.py', 'voc'
    work = tmp_path / 'work'
    train_from_public_weights(config, data[fmt], work, public_weights, validate=False)

    # Resume the 1-iteration run to 2 iterations: starts at iteration 1, saves and validates at 2.
    opts = small_run_options(config, data[fmt], iters=2)
    out = run_tool('tools/train.py', config, '--work-dir', str(work), '--resume',
                   '--cfg-options', *opts)
    log = out.stdout + out.stderr
    assert re.search(r'resumed epoch: \d+, iter: 1', log), log[-3000:]
    assert 'Iter(train) [1/2]' not in log and 'Iter(train) [2/2]' in log
    assert re.search(METRIC[fmt], log), 'validation metrics missing'
    assert last_iteration(work / 'iter_2.pth') == 2

    out = run_tool('tools/test.py', config, str(work / 'iter_2.pth'), '--work-dir',
                   str(tmp_path / 'test'), '--out', str(tmp_path / 'results.pkl'),
                   '--cfg-options', *opts)
    assert re.search(METRIC[fmt], out.stdout + out.stderr), (out.stdout + out.stderr)[-3000:]
    assert (tmp_path / 'results.pkl').stat().st_size > 0


@pytest.mark.slow
def test_faster_rcnn_trains_and_validates(data, public_weights, tmp_path):
    log = train_from_public_weights('configs/faster_rcnn_ean_r50_coco.py', data['coco'],
                                    tmp_path, public_weights, validate=True)
    assert re.search(METRIC['coco'], log), 'validation metrics missing'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_distributed_training(data, tmp_path):
    config = 'configs/ssdlite320_ean_mobilenext_coco.py'
    opts = small_run_options(config, data['coco'], validate=False)
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path),
         '--cfg-options', *opts],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1'))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'nccl -> gloo' in log, log[-3000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[-3000:]
    assert last_iteration(tmp_path / 'iter_1.pth') == 1


CONFIG = 'configs/faster_rcnn_ean_r50_coco.py'


@pytest.fixture
def coco_opts(data):
    return small_run_options(CONFIG, data['coco'])


def config_with(opts: List[str], config: str = CONFIG) -> Config:
    """``config`` as the tools load it with ``--cfg-options opts``."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return load_config(str(ROOT / config),
                       parser.parse_args(['--cfg-options', *opts]).cfg_options)


def check(opts: List[str], mode: str = 'train', config: str = CONFIG) -> None:
    """The tools' pre-flight check of ``config`` with ``--cfg-options opts``."""
    check_config_inputs(config_with(opts, config), mode,
                        load_tool('tools/train.py').pretrain_hint)


def test_error_missing_data_root(coco_opts, tmp_path):
    missing = tmp_path / 'nowhere'
    opts = [o for o in coco_opts if 'data_root' not in o] + [
        f'train_dataloader.dataset.data_root={missing}/']
    with pytest.raises(InputError, match='Data root not found') as err:
        check(opts)
    assert str(missing) in str(err.value) and 'train_dataloader.dataset' in str(err.value)


def test_error_missing_annotation_file(coco_opts):
    with pytest.raises(InputError, match='Annotation file not found.*annotations/missing.json'):
        check(coco_opts + ['train_dataloader.dataset.ann_file=annotations/missing.json'])


def test_error_missing_checkpoint(coco_opts, tmp_path):
    with pytest.raises(InputError, match='Checkpoint not found'):
        check(coco_opts + [f'load_from={tmp_path}/none.pth'], mode='test')


def test_error_missing_pretrained_checkpoint(data):
    # The tools print this as one line and exit 1 (tests/test_pretrain.py runs one such error).
    config = 'configs/ssdlite320_ean_mobilenext_coco.py'
    opts = [o for o in small_run_options(config, data['coco'])
            if not o.startswith('model.backbone.init_cfg')]
    with pytest.raises(InputError) as err:
        check(opts, config=config)
    for needle in ('Pretrained checkpoint not found', "'checkpoints/mobilenext_in1k.pth'",
                   "convert the MobileNeXt authors' ImageNet weights: python "
                   'tools/model_converters/mobilenext_official.py THEIR_FILE.pth '
                   'checkpoints/mobilenext_in1k.pth',
                   '--cfg-options model.backbone.init_cfg=None'):
        assert needle in str(err.value)


def test_error_invalid_json(coco_opts, data, tmp_path, monkeypatch, capsys):
    broken = tmp_path / 'broken.json'
    text = (data['coco'] / 'annotations' / 'instances_train2017.json').read_text()
    broken.write_text(text[:len(text) // 2])
    opts = coco_opts + [f'train_dataloader.dataset.ann_file={broken}']
    check(opts)  # the file exists: the pre-flight check passes, the dataset's parser fails
    # tools/train.py in this process (its Runner fails when it builds the dataset)
    monkeypatch.setattr(sys, 'argv', ['train.py', str(ROOT / CONFIG), '--work-dir',
                                      str(tmp_path / 'work'), '--cfg-options', *opts])
    try:
        with pytest.raises(SystemExit) as exc:
            exit_on_input_error(load_tool('tools/train.py').main)
    finally:
        torch.set_flush_denormal(False)  # the tool's CPU setting; keep other tests unaffected
    err = capsys.readouterr().err
    assert exc.value.code == 1 and 'Traceback' not in err
    assert f"error: Annotation file is not valid JSON: '{broken}'" in err
