"""Generated detection data and tiny training runs of the detection configs, shared by the
detection, deployment and CAM tests (each run once per session)."""
import json
from pathlib import Path
from typing import Dict, List

import torch
from conftest import ROOT, TORCHVISION_R50, run_tool
from mmengine.config import Config

from ean_mm.utils.short_run import is_epoch_based, short_run_options

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


def small_run_options(config: str, data_root: Path, iters: int = 1,
                      validate: bool = True, pretrained: bool = False) -> List[str]:
    """``--cfg-options`` that point ``config`` at the generated data and make the run tiny
    (``iters`` iterations, a checkpoint at the end, validation at the end if ``validate``, the
    backbone's ImageNet init only if ``pretrained``), leaving everything else as the config has
    it: :func:`ean_mm.utils.short_run.short_run_options` at :data:`INPUT` px, batches of 2,
    seeded. Seeded: the same initial heads every run. A one-iteration RTMDet's box distances
    sit near zero, and for some seeds every top-scoring box has a negative side, which the
    config's min_bbox_size filter drops: no detection to evaluate. Seed 0 gives boxes for every
    config."""
    return short_run_options(Config.fromfile(str(ROOT / config)), str(data_root), iters,
                             batch_size=2, input_size=INPUT, validate=validate,
                             pretrained=pretrained, seed=0)


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


#: The file the RTMDet-s config's backbone init_cfg names (https://download.openmmlab.com/
#: mmdetection/v3.0/rtmdet/cspnext_rsb_pretrain/cspnext-s_imagenet_600e.pth, prefix
#: ``backbone.``), as a download leaves it in torch's cache. Source: installed mmdet 3.3.0
#: ``.mim/configs/rtmdet/rtmdet_s_8xb32-300e_coco.py`` (open-mmlab/mmdetection
#: ``configs/rtmdet/rtmdet_s_8xb32-300e_coco.py`` @ 9b79bd55feb6e023d22306ee263bbe24f8f721fd).
CSPNEXT_S = 'cspnext-s_imagenet_600e.pth'


def write_cspnext_s_checkpoint(path: Path, seed: int = 5) -> Dict[str, torch.Tensor]:
    """An ImageNet CSPNeXt-s classifier checkpoint with the published file's keys and shapes:
    mmpretrain's ``ImageClassifier`` built as mmdet's ``configs/rtmdet/classification/
    cspnext-s_8xb256-rsb-a1-600e_in1k.py`` (installed mmdet 3.3.0; open-mmlab/mmdetection @
    19bceba56284d440278e80cfde1d95460330ccbb, the same model section) builds it (backbone
    ``mmdet.CSPNeXt`` P5, deepen 0.33, widen 0.5, channel attention, BN; global average pooling;
    ``LinearClsHead`` 512 -> 1000), random values, saved as mmengine saves (``meta``,
    ``state_dict`` with ``backbone.*`` and ``head.fc.*``). Returns the state dict."""
    from conftest import randomised
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    init_default_scope('mmpretrain')
    classifier = MMPRETRAIN_MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='mmdet.CSPNeXt', arch='P5', out_indices=(4, ), expand_ratio=0.5,
                      deepen_factor=0.33, widen_factor=0.5, channel_attention=True,
                      norm_cfg=dict(type='BN'), act_cfg=dict(type='mmdet.SiLU')),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=512)))
    state = randomised(classifier.state_dict(), seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'meta': {}, 'state_dict': state}, path)
    return state


def stock_torch_home(root: Path, torchvision_r50: Path) -> Path:
    """A TORCH_HOME whose cache holds what the stock-recipe configs start from:
    ``torchvision://resnet50`` (the file of :func:`conftest.public_weights`) and the RTMDet-s
    config's CSPNeXt-s ImageNet checkpoint (:func:`write_cspnext_s_checkpoint`)."""
    cache = root / 'hub' / 'checkpoints'
    cache.mkdir(parents=True, exist_ok=True)
    (cache / TORCHVISION_R50).symlink_to(torchvision_r50)
    write_cspnext_s_checkpoint(cache / CSPNEXT_S)
    return root


def train_one_iteration(config: str, data_root: Path, work: Path, torch_home: Path,
                        validate: bool = True) -> Dict[str, object]:
    """tools/train.py of ``config`` for one iteration (one epoch of one batch for mmdet's
    epoch-based recipes) from the public weights its backbone names, found in ``torch_home``'s
    cache, as a user runs it. Returns ``config``, ``work``, ``checkpoint`` and ``log``."""
    cfg = Config.fromfile(str(ROOT / config))
    opts = small_run_options(config, data_root, iters=1, validate=validate, pretrained=True)
    out = run_tool('tools/train.py', config, '--work-dir', str(work), '--cfg-options', *opts,
                   env=dict(TORCH_HOME=str(torch_home)))
    checkpoint = work / ('epoch_1.pth' if is_epoch_based(cfg) else 'iter_1.pth')
    assert last_iteration(checkpoint) == 1
    return dict(config=config, work=work, checkpoint=checkpoint, log=out.stdout + out.stderr)
