"""Models and their plain twins: preset classifiers (:data:`ean_mm.paper.CLASSIFIERS`) and
detector configs, each paired with the same network without attention."""
import copy
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch.nn as nn

from ..models import set_ean_implementation
from ..paper import CLASSIFIERS, Table3Row, classifier_cfg
from ..utils import quiet_mmengine

__all__ = ['ModelSpec', 'FAMILY_BATCH', 'DEFAULT_MODELS', 'preset_spec', 'config_spec',
           'spec_of', 'resolve', 'build_classifier', 'build_detector', 'build_model']


@dataclass
class ModelSpec:
    """One model of a benchmark: what to build, its plain twin and its family."""
    name: str  # preset name (ean_mm.paper.CLASSIFIERS) or config path
    label: str
    kind: str  # 'classifier' | 'detector'
    twin: Optional[str]  # name of the plain twin (None: this is a plain model)
    family: str
    batch_size: int  # default batch size
    attention: str = 'plain'  # 'plain' | 'SE' | 'CA' | 'EAN'
    paper: Optional[Table3Row] = None


#: Default batch size per classifier family (detectors: 2).
FAMILY_BATCH = {'ResNet-50': 8, 'MobileNeXt': 16, 'MobileNetV2': 16, 'ResNet-18': 8}

#: The paper's Table 3 set.
DEFAULT_MODELS = ['r50', 'se-r50', 'ca-r50', 'ean-r50', 'mx', 'se-mx', 'ca-mx', 'ean-mx']
_ATTENTION_TAGS = {'ean': 'EAN', 'se': 'SE', 'ca': 'CA'}


def preset_spec(name: str) -> ModelSpec:
    """The spec of classifier preset ``name``."""
    p = CLASSIFIERS[name]
    return ModelSpec(p.name, p.label, 'classifier', p.twin, p.family,
                     FAMILY_BATCH.get(p.family, 8), p.attention, p.paper)


def config_spec(path: str) -> ModelSpec:
    """A detector config; its twin is the same file name without ``_ean`` / ``_se`` / ``_ca``."""
    if not osp.isfile(path):
        raise SystemExit(f'benchmark: {path!r} is neither a preset '
                         f'({", ".join(CLASSIFIERS)}) nor a config file.')
    stem = osp.splitext(osp.basename(path))[0]
    twin, attention = None, 'plain'
    for tag, name in _ATTENTION_TAGS.items():
        plain = re.sub(rf'(^|_){tag}_', r'\1', stem, count=1)
        if plain != stem:
            twin = osp.join(osp.dirname(path), plain + '.py')
            attention = name
            if not osp.isfile(twin):
                raise SystemExit(f'benchmark: the plain twin of {path} ({twin}) does not exist.')
            break
    family = osp.splitext(osp.basename(twin))[0] if twin else stem
    return ModelSpec(osp.normpath(path), stem, 'detector', osp.normpath(twin) if twin else None,
                     family, 2, attention)


def spec_of(name: str) -> ModelSpec:
    """The spec of a preset name or a detector config path."""
    return preset_spec(name) if name in CLASSIFIERS else config_spec(name)


def resolve(names: Sequence[str]) -> List[ModelSpec]:
    """Specs for ``names`` (presets or config paths), plain twins added where missing; grouped by
    family (first appearance), the plain twin first in each family."""
    specs: Dict[str, ModelSpec] = {}

    def add(name: str) -> None:
        spec = spec_of(name)
        if spec.name in specs:
            return
        if spec.twin is not None:
            add(spec.twin)
        specs[spec.name] = spec

    for name in names:
        add(name)
    families: Dict[str, List[ModelSpec]] = {}
    for spec in specs.values():
        families.setdefault(spec.family, []).append(spec)
    ordered = []
    for members in families.values():
        ordered += sorted(members, key=lambda s: s.twin is not None)  # stable: plain first
    return ordered


def build_classifier(name: str, num_classes: int = 1000) -> nn.Module:
    """The mmpretrain classifier of preset ``name``, weights not initialised."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    return MODELS.build(classifier_cfg(name, num_classes))


def build_detector(cfg) -> nn.Module:
    """The mmdet detector of config ``cfg`` (an ``mmengine.Config`` or a path) with no backbone
    checkpoint (``init_cfg=None``), weights not initialised."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    init_default_scope('mmdet')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None  # random weights: no checkpoint needed
    # SyncBN (RTMDet's configs) as BatchNorm in one process, as mmengine's Runner makes it
    return revert_sync_batchnorm(MODELS.build(model_cfg))


def build_model(spec: ModelSpec, implementation: str = 'auto') -> nn.Module:
    """The model of ``spec`` with initialised random weights, EAN layers set to
    ``implementation``."""
    if spec.kind == 'classifier':
        model = build_classifier(spec.name)
    else:
        model = build_detector(spec.name)
    with quiet_mmengine():
        model.init_weights()  # mmengine logs every parameter's initialisation at INFO
    set_ean_implementation(model, implementation)
    return model
