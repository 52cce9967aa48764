"""A model from a config and checkpoint, and an image file as the batch its test pipeline and
data preprocessor make of it (what ``tools/test.py`` feeds the model)."""
import os.path as osp
from typing import Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..utils import InputError, load_config


def init_model(config: str, checkpoint: str, device: str = 'cpu',
               cfg_options: Optional[dict] = None, strict: bool = False) -> nn.Module:
    """The model of ``config`` (with ``cfg_options``) holding ``checkpoint``'s weights
    (weights-only load), in eval mode, with ``cfg``, ``classes`` and ``scope`` attached. A
    checkpoint that leaves any weight unloaded (missing or of another shape) is refused
    (:func:`~ean_mm.checkpoint.check_checkpoint_fits`); with ``strict``, one that holds more
    tensors than the model too."""
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import MODELS, DefaultScope, init_default_scope
    from mmengine.runner import load_checkpoint

    from ..checkpoint import check_checkpoint_fits
    if not osp.isfile(checkpoint):
        raise InputError(f'checkpoint not found: {checkpoint!r}')
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    scope = DefaultScope.get_current_instance().scope_name
    cfg.model.setdefault('init_cfg', None)
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # the checkpoint holds every weight
    # SyncBN (RTMDet's configs) as BatchNorm outside distributed runs, as mmdet's init_detector
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    check_checkpoint_fits(model, checkpoint, f'the model of {config}',
                          allow_unexpected=not strict)
    meta = load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    classes = (meta.get('meta', {}).get('dataset_meta') or {}).get('classes')
    model.cfg, model.classes, model.scope = cfg, classes, scope
    return model.to(device).eval()


def test_pipeline(cfg) -> list:
    """The pipeline ``tools/test.py`` runs (``--cfg-options`` change it), else the config's
    ``test_pipeline``."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise InputError('the config has no test pipeline (test_dataloader.dataset.pipeline '
                         'or test_pipeline)')
    return [dict(step) for step in pipeline if step.get('type') not in ('LoadAnnotations',
                                                                        'mmdet.LoadAnnotations')]


def prepare_image(model: nn.Module, image: str) -> Tuple[torch.Tensor, list, np.ndarray]:
    """``(inputs, data_samples, rgb)``: the batch of one image the test pipeline and the data
    preprocessor make, and the resized image as RGB in [0, 1] (before normalisation)."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    if not osp.isfile(image):
        raise InputError(f'image not found: {image!r}')
    init_default_scope(model.scope)
    data = Compose(test_pipeline(model.cfg))(dict(img_path=image, img_id=0))
    raw = data['inputs'].float()  # (3, H, W), BGR as loaded by cv2
    batch = model.data_preprocessor(pseudo_collate([data]), False)
    rgb = raw.flip(0).permute(1, 2, 0).numpy() / 255.0
    return batch['inputs'], batch['data_samples'], np.clip(rgb, 0, 1)


def dataset_classes(cfg) -> Optional[Tuple[str, ...]]:
    """The class names of the config's test dataset (its ``metainfo``, else its type's)."""
    from mmengine.registry import DATASETS
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    while 'dataset' in dataset:  # wrappers (RepeatDataset, ...)
        dataset = dataset['dataset']
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None and isinstance(dataset.get('type'), str):
        name = dataset['type']
        if '.' not in name:  # in the config's scope (whose registry imports its datasets)
            name = f"{cfg.get('default_scope', 'mmdet')}.{name}"
        dataset_type = DATASETS.get(name)
        classes = getattr(dataset_type, 'METAINFO', {}).get('classes')
    return tuple(classes) if classes else None
