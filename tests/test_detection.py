"""The EAN detection configs through tools/train.py and tools/test.py on generated data: train a
few iterations, save, resume, evaluate; distributed training; clear errors."""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
from typing import List

import pytest
import torch
from conftest import ROOT, load_tool, run_tool
from detection_runs import METRIC, last_iteration, small_run_options
from mmengine.config import Config, DictAction

from ean_mm.utils import InputError, check_config_inputs, exit_on_input_error, load_config

@pytest.fixture
def data(detection_data):
    return detection_data


@pytest.mark.slow
def test_train_resume_test(data, ssdlite_voc_run, tmp_path):
    # SSDLite on VOC: train (the shared run), resume, validate, test; Faster R-CNN on COCO below;
    # SSDLite on COCO in test_two_process_distributed_training.
    config, fmt = ssdlite_voc_run['config'], 'voc'
    work = tmp_path / 'work'
    shutil.copytree(ssdlite_voc_run['work'], work)  # the shared run stays as it is

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
def test_faster_rcnn_trains_and_validates(faster_rcnn_coco_run):
    log = faster_rcnn_coco_run['log']
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
