"""The EAN paper's figures (Li, Li & Wen, AAAI 2024, Tables 1, 3-5) and the ean_mm models they
belong to: one table, read by the benchmark, the parameter table and the tests."""
import copy
from dataclasses import dataclass
from typing import Dict, Optional

__all__ = ['Table1Row', 'Table3Row', 'DetectionRow', 'ClassifierPreset', 'CLASSIFIERS',
           'DETECTORS', 'classifier_cfg']


@dataclass(frozen=True)
class Table1Row:
    """Table 1: CIFAR classifier (the parameter count is the CIFAR-100 model's)."""
    params_m: float
    flops: str
    c10: float
    c100: float


@dataclass(frozen=True)
class Table3Row:
    """Table 3: ImageNet-1K classifier at 224x224 (hardware not stated)."""
    params_m: float
    flops: str
    fps: int
    top1: float


@dataclass(frozen=True)
class DetectionRow:
    """Table 4 (PASCAL VOC 2012 val, SSDLite320) or Table 5 (COCO 2017 val)."""
    table: str
    params_m: float
    map: float
    ap50: Optional[float] = None
    ap75: Optional[float] = None


@dataclass(frozen=True)
class ClassifierPreset:
    """An mmpretrain classifier backbone of ours with its plain twin and Table 3 row."""
    name: str
    label: str
    family: str
    attention: str  # 'plain', 'SE', 'CA' or 'EAN'
    twin: Optional[str]  # the plain twin's name; None for a plain model
    backbone: dict
    channels: int
    paper: Optional[Table3Row] = None
    cifar: Optional[Table1Row] = None


_SE = dict(type='ean_mm.SE', reduction=16)
_CA = dict(type='ean_mm.CoordAttention', reduction=32, min_channels=8)


def _resnet(type: str = 'mmdet.ResNet', depth: int = 50, **kwargs) -> dict:
    # mmdet's ResNet (mmpretrain's takes no plugins) and ean_mm's subclasses of it, as in
    # configs/pretrain/*_r50_in1k.py; norm_eval=False: BN trains.
    return dict(type=type, depth=depth, out_indices=(3, ), norm_eval=False, **kwargs)


def _mobilenext(type: str = 'ean_mm.MobileNeXt', **kwargs) -> dict:
    return dict(type=type, out_indices=(7, ), **kwargs)


def _mobilenet_v2(type: str = 'ean_mm.AttentionMobileNetV2', **kwargs) -> dict:
    # mmpretrain's MobileNetV2 network and keys (AttentionMobileNetV2 without attention).
    return dict(type=type, out_indices=(7, ), **kwargs)


CLASSIFIERS: Dict[str, ClassifierPreset] = {p.name: p for p in [
    ClassifierPreset('r50', 'ResNet-50', 'ResNet-50', 'plain', None, _resnet(), 2048,
                     Table3Row(25.56, '4.11G', 114, 76.45)),
    ClassifierPreset('se-r50', 'SE-ResNet-50', 'ResNet-50', 'SE', 'r50',
                     _resnet('ean_mm.AttentionResNet', attention_cfg=_SE), 2048,
                     Table3Row(28.09, '4.12G', 78, 77.31)),
    ClassifierPreset('ca-r50', 'CA-ResNet-50', 'ResNet-50', 'CA', 'r50',
                     _resnet('ean_mm.AttentionResNet', attention_cfg=_CA), 2048,
                     Table3Row(28.08, '4.16G', 62, 77.40)),
    ClassifierPreset('ean-r50', 'EAN-ResNet-50', 'ResNet-50', 'EAN', 'r50',
                     _resnet('ean_mm.EANResNet', ean_groups=64), 2048,
                     Table3Row(25.56, '4.11G', 78, 77.87)),
    ClassifierPreset('mx', 'MobileNeXt', 'MobileNeXt', 'plain', None, _mobilenext(), 1280,
                     Table3Row(3.54, '343.66M', 115, 72.45),
                     Table1Row(2.38, '6.92M', 85.71, 54.77)),
    ClassifierPreset('se-mx', 'SE-MobileNeXt', 'MobileNeXt', 'SE', 'mx',
                     _mobilenext(attention_cfg=_SE), 1280, Table3Row(4.19, '345.95M', 80, 73.51),
                     Table1Row(3.10, '7.87M', 86.04, 57.12)),
    ClassifierPreset('ca-mx', 'CA-MobileNeXt', 'MobileNeXt', 'CA', 'mx',
                     _mobilenext(attention_cfg=_CA), 1280, Table3Row(4.39, '356.50M', 55, 73.89),
                     Table1Row(3.46, '8.95M', 87.12, 58.58)),
    ClassifierPreset('ean-mx', 'EAN-MobileNeXt', 'MobileNeXt', 'EAN', 'mx',
                     _mobilenext('ean_mm.EANMobileNeXt', ean_groups=8), 1280,
                     Table3Row(3.54, '343.66M', 78, 74.21), Table1Row(2.38, '6.92M', 88.00, 60.88)),
    ClassifierPreset('mv2', 'MobileNetV2', 'MobileNetV2', 'plain', None, _mobilenet_v2(), 1280,
                     Table3Row(3.50, '327.49M', 138, 71.53),
                     Table1Row(2.35, '6.79M', 83.56, 53.31)),
    ClassifierPreset('se-mv2', 'SE-MobileNetV2', 'MobileNetV2', 'SE', 'mv2',
                     _mobilenet_v2(attention_cfg=_SE), 1280, Table3Row(4.08, '331.40M', 92, 72.32),
                     Table1Row(2.92, '7.42M', 84.93, 54.52)),
    ClassifierPreset('ca-mv2', 'CA-MobileNetV2', 'MobileNetV2', 'CA', 'mv2',
                     _mobilenet_v2(attention_cfg=_CA), 1280, Table3Row(4.37, '346.59M', 64, 72.55),
                     Table1Row(3.21, '8.69M', 85.89, 55.85)),
    ClassifierPreset('ean-mv2', 'EAN-MobileNetV2', 'MobileNetV2', 'EAN', 'mv2',
                     _mobilenet_v2('ean_mm.EANMobileNetV2', ean_groups=8), 1280,
                     Table3Row(3.50, '327.49M', 79, 72.80), Table1Row(2.35, '6.79M', 86.74, 56.20)),
    # Small twins for quick runs; not in the paper.
    ClassifierPreset('r18', 'ResNet-18', 'ResNet-18', 'plain', None, _resnet(depth=18), 512),
    ClassifierPreset('ean-r18', 'EAN-ResNet-18', 'ResNet-18', 'EAN', 'r18',
                     _resnet('ean_mm.EANResNet', depth=18, ean_groups=64), 512),
]}

#: Our detection configs (``configs/<name>.py``) and the paper's row for each, where it has one.
DETECTORS: Dict[str, Optional[DetectionRow]] = {
    'faster_rcnn_r50_coco': DetectionRow('Table 5', 41.7, 36.4, 58.4, 39.1),
    'faster_rcnn_se_r50_coco': DetectionRow('Table 5', 44.3, 37.7, 60.1, 40.9),
    'faster_rcnn_ca_r50_coco': DetectionRow('Table 5', 44.7, 38.0, 60.8, 41.7),
    'faster_rcnn_ean_r50_coco': DetectionRow('Table 5', 41.7, 38.4, 60.8, 42.2),
    'faster_rcnn_r50_voc': None,
    'faster_rcnn_se_r50_voc': None,
    'faster_rcnn_ca_r50_voc': None,
    'faster_rcnn_ean_r50_voc': None,
    'ssdlite320_mobilenext_coco': DetectionRow('Table 5', 4.3, 22.3, 37.4, 22.7),
    'ssdlite320_se_mobilenext_coco': DetectionRow('Table 5', 4.7, 22.6, 39.3, 23.4),
    'ssdlite320_ca_mobilenext_coco': DetectionRow('Table 5', 4.8, 23.0, 39.8, 24.1),
    'ssdlite320_ean_mobilenext_coco': DetectionRow('Table 5', 4.3, 23.5, 40.2, 24.6),
    'ssdlite320_mobilenext_voc': DetectionRow('Table 4', 4.4, 72.3),
    'ssdlite320_se_mobilenext_voc': DetectionRow('Table 4', 4.8, 72.4),
    'ssdlite320_ca_mobilenext_voc': DetectionRow('Table 4', 4.9, 72.9),
    'ssdlite320_ean_mobilenext_voc': DetectionRow('Table 4', 4.4, 73.4),
    'ssdlite320_mobilenetv2_coco': None,
    'ssdlite320_ean_mobilenetv2_coco': None,
    # The detectors people train today, on mmdet's stock recipes: not in the paper.
    'retinanet_r50_coco': None,
    'retinanet_ean_r50_coco': None,
    'mask_rcnn_r50_coco': None,
    'mask_rcnn_ean_r50_coco': None,
    'cascade_rcnn_r50_coco': None,
    'cascade_rcnn_ean_r50_coco': None,
    'rtmdet_s_coco': None,
    'rtmdet_s_ean_coco': None,
}


def classifier_cfg(name: str, num_classes: int = 1000) -> dict:
    """mmpretrain ``ImageClassifier`` config of preset ``name``: backbone, global average
    pooling, linear head (the paper's Table 3 classifiers with 1000 classes)."""
    if name not in CLASSIFIERS:
        raise KeyError(f'unknown classifier preset {name!r}; choose one of '
                       f'{", ".join(CLASSIFIERS)}')
    preset = CLASSIFIERS[name]
    return dict(type='ImageClassifier', _scope_='mmpretrain',
                backbone=copy.deepcopy(preset.backbone), neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes,
                          in_channels=preset.channels))
