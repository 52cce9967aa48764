"""Print parameter counts of ean_mm models beside the numbers the EAN paper reports.

    python tools/analysis/param_table.py [--format markdown|plain]

Classifiers are mmpretrain ``ImageClassifier`` s (global average pooling + linear head, 1000
classes), as in the paper's Table 3; detectors are built from the project's configs
(Tables 4 and 5).
"""
import argparse
from typing import List, Optional, Tuple

import os.path as osp

import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import ean_mm  # noqa: F401  (registers the EAN components)

# (name, backbone config, feature channels, paper's count in M or None, paper reference)
SE = dict(type='SE', reduction=16)
CA = dict(type='CoordAttention', reduction=32, min_channels=8)


def _resnet(**kwargs) -> dict:
    # mmdet's ResNet (mmpretrain's own takes no plugins), as in configs/pretrain/*_r50_in1k.py
    return dict(type='mmdet.ResNet', depth=50, out_indices=(3, ), norm_eval=False, **kwargs)


def _plugin(layer: dict) -> list:
    return [dict(cfg=layer, position='after_conv3')]


CLASSIFIERS: List[Tuple[str, dict, int, Optional[float], str]] = [
    ('ResNet-50 classifier', _resnet(), 2048, 25.56, 'Table 3'),
    ('EAN-ResNet-50 classifier', dict(_resnet(), type='EANResNet'), 2048, 25.56, 'Table 3'),
    ('SE-ResNet-50 classifier', _resnet(plugins=_plugin(SE)), 2048, 28.09, 'Table 3'),
    ('CA-ResNet-50 classifier', _resnet(plugins=_plugin(CA)), 2048, 28.08, 'Table 3'),
    ('MobileNeXt classifier', dict(type='MobileNeXt', out_indices=(7, )), 1280, 3.54, 'Table 3'),
    ('EAN-MobileNeXt classifier', dict(type='EANMobileNeXt', out_indices=(7, )), 1280, 3.54,
     'Table 3'),
    ('SE-MobileNeXt classifier', dict(type='MobileNeXt', out_indices=(7, ), attention_cfg=SE),
     1280, 4.19, 'Table 3'),
    ('CA-MobileNeXt classifier', dict(type='MobileNeXt', out_indices=(7, ), attention_cfg=CA),
     1280, 4.39, 'Table 3'),
]

# (config, paper's count in M, paper reference)
DETECTORS: List[Tuple[str, Optional[float], str]] = [
    ('configs/faster_rcnn_r50_coco.py', 41.7, 'Table 5'),
    ('configs/faster_rcnn_ean_r50_coco.py', 41.7, 'Table 5'),
    ('configs/faster_rcnn_se_r50_coco.py', 44.3, 'Table 5'),
    ('configs/faster_rcnn_ca_r50_coco.py', 44.7, 'Table 5'),
    ('configs/faster_rcnn_r50_voc.py', None, '-'),
    ('configs/faster_rcnn_ean_r50_voc.py', None, '-'),
    ('configs/ssdlite320_mobilenext_coco.py', 4.3, 'Table 5'),
    ('configs/ssdlite320_ean_mobilenext_coco.py', 4.3, 'Table 5'),
    ('configs/ssdlite320_se_mobilenext_coco.py', 4.7, 'Table 5'),
    ('configs/ssdlite320_ca_mobilenext_coco.py', 4.8, 'Table 5'),
    ('configs/ssdlite320_mobilenext_voc.py', 4.4, 'Table 4'),
    ('configs/ssdlite320_ean_mobilenext_voc.py', 4.4, 'Table 4'),
    ('configs/ssdlite320_se_mobilenext_voc.py', 4.8, 'Table 4'),
    ('configs/ssdlite320_ca_mobilenext_voc.py', 4.9, 'Table 4'),
]
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def classifier_rows() -> List[Tuple[str, int, Optional[float], str]]:
    init_default_scope('mmpretrain')
    rows = []
    for name, backbone, channels, paper, ref in CLASSIFIERS:
        model = MODELS.build(dict(
            type='ImageClassifier', backbone=backbone, neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=channels)))
        rows.append((name, count(model), paper, ref))
    return rows


def detector_rows() -> List[Tuple[str, int, Optional[float], str]]:
    init_default_scope('mmdet')
    rows = []
    for config, paper, ref in DETECTORS:
        model_cfg = Config.fromfile(osp.join(ROOT, config)).model
        model_cfg.backbone.init_cfg = None  # counting needs no pretrained weights
        rows.append((osp.basename(config), count(DET_MODELS.build(model_cfg)), paper, ref))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--format', choices=['markdown', 'plain'], default='markdown')
    args = parser.parse_args()
    header = ('model', 'params', 'params (M)', 'paper (M)', 'source')
    lines = [header]
    for name, n, paper, ref in classifier_rows() + detector_rows():
        lines.append((name, f'{n:,}', f'{n / 1e6:.2f}', f'{paper:.2f}' if paper else '-', ref))
    if args.format == 'markdown':
        print('| ' + ' | '.join(header) + ' |')
        print('|' + '---|' * len(header))
        for row in lines[1:]:
            print('| ' + ' | '.join(row) + ' |')
    else:
        widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
        for row in lines:
            print('  '.join(c.ljust(w) for c, w in zip(row, widths)))


if __name__ == '__main__':
    main()
