"""Attention layers in backbones: one way to resolve and build EAN, SE, CA or any plugin layer."""
import copy
from typing import Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_plugin_layer

from ...registry import MODELS, SCOPE
from .hooks import hooked

__all__ = ['resolve_attention_cfg', 'build_attention_layer', 'norm_and_attention',
           'add_identity']


def resolve_attention_cfg(cfg: dict) -> dict:
    """``cfg`` with its ``type`` name replaced by the class, looked up in the ``ean_mm`` scope.

    ``'EAN'`` means ``ean_mm.EAN`` whatever the caller's default scope is; other scopes
    (``'mmdet.SELayer'``) and root layers (``'ContextBlock'``) resolve as usual. The result is a
    valid mmcv plugin cfg (mmcv's plugin builder accepts a class as ``type``).
    """
    cfg = copy.deepcopy(cfg)
    if isinstance(cfg.get('type'), str):
        with MODELS.switch_scope_and_registry(SCOPE) as registry:
            layer_cls = registry.get(cfg['type'])
        if layer_cls is None:
            raise KeyError(f"attention layer type {cfg['type']!r} is not registered in scope "
                           f'{SCOPE!r} or its parents; import the package that registers it')
        cfg['type'] = layer_cls
    return cfg


def build_attention_layer(cfg: dict, in_channels: int) -> Tuple[str, nn.Module]:
    """``(name, layer)`` built from ``cfg`` for ``in_channels`` channels.

    The name is the layer's ``_abbr_`` (``ean``, ``se``, ``ca``) plus ``cfg['postfix']``, as
    mmcv names plugins, so state-dict keys match those of mmdet's Bottleneck plugins.
    """
    cfg = resolve_attention_cfg(cfg)
    return build_plugin_layer(cfg, in_channels=in_channels, postfix=cfg.pop('postfix', ''))


def norm_and_attention(norm: nn.Module, attention: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``attention(norm(x))``; through EAN's :meth:`~.EAN.forward_after_norm`, which for a
    BatchNorm2d keeps only ``x`` for backward."""
    after_norm = getattr(attention, 'forward_after_norm', None)
    return after_norm(norm, x) if after_norm is not None else attention(norm(x))


def add_identity(out: torch.Tensor, identity: torch.Tensor, producer: nn.Module) -> torch.Tensor:
    """A residual block's ``out + identity``, written into ``out`` as mmdet's ResNet blocks add
    (so an EAN block allocates what its plain twin does), unless hooks watch ``producer``, the
    module that returned ``out``: a hook may hold that tensor (GradCAM's activations), and it
    keeps its values."""
    if hooked(producer):
        return out + identity
    out += identity
    return out
