"""The detectors people train today (RetinaNet, Mask R-CNN, Cascade R-CNN, RTMDet-s), each an EAN
config and its plain twin on mmdet's stock recipe: one iteration through tools/train.py from the
public weights the configs name, then tools/test.py with mmdet's CocoMetric (boxes; Mask R-CNN
also masks); the twins' dumped configs differ only in the backbone, and the plain twins are
mmdet's configs unchanged."""
import re
from pathlib import Path

import pytest
from conftest import ROOT, run_tool
from detection_runs import small_run_options
from mmengine.config import Config
from mmengine.hub import get_config

#: (plain twin, EAN config, EAN layers the plain start reports, mmdet's stock config)
PAIRS = [
    ('configs/retinanet_r50_coco.py', 'configs/retinanet_ean_r50_coco.py', 16,
     'retinanet/retinanet_r50_fpn_1x_coco.py'),
    ('configs/mask_rcnn_r50_coco.py', 'configs/mask_rcnn_ean_r50_coco.py', 16,
     'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
    ('configs/cascade_rcnn_r50_coco.py', 'configs/cascade_rcnn_ean_r50_coco.py', 16,
     'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'),
    ('configs/rtmdet_s_coco.py', 'configs/rtmdet_s_ean_coco.py', 6,
     'rtmdet/rtmdet_s_8xb32-300e_coco.py'),
]
CONFIGS = [c for pair in PAIRS for c in pair[:2]]
EAN_LAYERS = {ean: layers for _, ean, layers, _ in PAIRS}
BBOX = r'coco/bbox_mAP: [\d.]+ +coco/bbox_mAP_50: [\d.]+ +coco/bbox_mAP_75: [\d.]+'
SEGM = r'coco/segm_mAP: [\d.]+ +coco/segm_mAP_50: [\d.]+ +coco/segm_mAP_75: [\d.]+'


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS, ids=[Path(c).stem for c in CONFIGS])
def test_trains_from_public_weights_and_tests(config, stock_runs, detection_data, tmp_path):
    run = stock_runs(config)
    log = run['log']
    if config in EAN_LAYERS:  # started exactly as the plain network from the plain weights
        assert f'plain checkpoint, {EAN_LAYERS[config]} EAN layers start as the plain ' \
               'network' in log, log[-3000:]
    assert re.search(r'Epoch\(train\) +\[1\]\[1/1\] .* loss: [\d.]+', log), log[-3000:]
    opts = small_run_options(config, detection_data['coco'])
    out = run_tool('tools/test.py', config, str(run['checkpoint']), '--work-dir',
                   str(tmp_path), '--cfg-options', *opts)
    printed = out.stdout + out.stderr
    assert re.search(BBOX, printed), printed[-3000:]
    if 'mask_rcnn' in config:  # masks evaluated too, from the generator's polygons
        assert re.search(SEGM, printed), printed[-3000:]


def _dumped(run: dict) -> dict:
    """The config tools/train.py wrote into the run's work dir, as a dict."""
    cfg = Config.fromfile(str(run['work'] / Path(run['config']).name)).to_dict()
    for key in ('work_dir', 'launcher'):
        cfg.pop(key, None)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('plain,ean,layers,stock', PAIRS, ids=[Path(p[0]).stem for p in PAIRS])
def test_twins_differ_only_in_the_backbone(plain, ean, layers, stock, stock_runs):
    a, b = _dumped(stock_runs(plain)), _dumped(stock_runs(ean))
    backbone_a, backbone_b = a['model'].pop('backbone'), b['model'].pop('backbone')
    assert a == b
    extra = {k: v for k, v in backbone_b.items() if backbone_a.get(k) != v}
    assert extra.pop('type').startswith('ean_mm.EAN')
    assert extra == {'ean_groups': 64 if 'r50' in ean else 8}, extra
    assert set(backbone_a) <= set(backbone_b)
    # the plain twin is mmdet's stock config, unchanged
    ours = _unscoped(Config.fromfile(str(ROOT / plain)).to_dict())
    assert ours.pop('custom_imports') == dict(imports=['ean_mm'], allow_failed_imports=False)
    assert ours == _unscoped(get_config(f'mmdet::{stock}').to_dict())


def _unscoped(node):
    """``node`` without the ``_scope_`` keys mmengine adds to what a ``mmdet::`` base holds."""
    if isinstance(node, dict):
        return {k: _unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return type(node)(_unscoped(v) for v in node)
    return node
