"""Generated detection data and tiny training runs of the detection configs, shared by the
detection, deployment and CAM tests (each run once per session)."""
import json
from pathlib import Path
from typing import Dict, List

import torch
from conftest import ROOT, run_tool
from mmengine.config import Config

SIZE = 256  # generated images: shapes >= 32 px, so VOC's bbox_min_size filter keeps them
INPUT = 160  # the detectors' input size in these runs
COCO_NAMES = ['person', 'bicycle', 'car']
VOC_NAMES = ['aeroplane', 'bicycle', 'bird']
METRIC = {'coco': r'coco/bbox_mAP: [\d.]+ +coco/bbox_mAP_50: [\d.]+ +coco/bbox_mAP_75: [\d.]+',
          'voc': r'pascal_voc/mAP: [\d.]+'}


def make_detection_data(root: Path) -> Dict[str, Path]:
    """COCO and VOC folders of generated images (4 train, 2 val) under ``root``."""
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
    """``meta['iter']`` of a checkpoint tools/train.py saved: iterations done (by_epoch=False:
    ``self.iter + 1``). Source: open-mmlab/mmengine ``mmengine/runner/runner.py`` @
    0050ff70b73e047defe9db0c3bb01555038596b7 ``Runner.save_checkpoint`` (installed mmengine 0.10.7:
    the same)."""
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


def fake_onnx_export(monkeypatch) -> None:
    """Make ``ean_mm.deploy.export_onnx`` write a tiny valid file with the detector I/O names
    (``input`` 1x3x4x4 -> ``dets``, ``labels``) instead of exporting: its own write path runs
    (metadata, atomic write) in a second."""
    import onnx.helper as helper
    from onnx import TensorProto

    import ean_mm.deploy.export as export
    shape = [1, 3, 4, 4]
    graph = helper.make_graph(
        [helper.make_node('Identity', ['input'], ['dets']),
         helper.make_node('Identity', ['input'], ['labels'])], 'g',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info('dets', TensorProto.FLOAT, shape),
         helper.make_tensor_value_info('labels', TensorProto.FLOAT, shape)])

    class Program:
        model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])

    monkeypatch.setattr(export, 'end2end_detector', lambda detector: detector)
    monkeypatch.setattr(torch.onnx, 'export', lambda *args, **kwargs: Program())
