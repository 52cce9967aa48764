"""EAN networks started from plain checkpoints, exactly.

A fresh EAN (``alpha = delta = 0``, EAN paper Eqn 8) returns ``sigmoid(0) * x = 0.5 * x``. Every
EAN in ean_mm's backbones takes its input straight from a norm layer; with that norm's weight
and bias doubled, norm -> EAN computes what the plain network's norm computes, bit for bit, in
eval and in train mode (batch statistics too): scaling by 2 and by 0.5 is exact in floating
point. Training then starts from the plain solution and EAN learns its attention from there.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmdet.models.backbones.resnet import Bottleneck

from ..utils.errors import InputError
from .io import format_keys

__all__ = ['EAN_TENSORS', 'ean_layers', 'ean_norm_pairs', 'start_from_plain']

#: An EAN layer's state-dict entries.
EAN_TENSORS = ('gn.weight', 'gn.bias', 'alpha', 'delta')


def ean_layers(module: nn.Module) -> List[str]:
    """Paths of the EAN layers in ``module``."""
    from ..models.layers.ean import EAN  # the models import this package
    return [name for name, m in module.named_modules() if isinstance(m, EAN)]


def _norm_before(block: nn.Module, name: str) -> Optional[str]:
    """The norm layer whose output is the input of ``block.<name>``, if ean_mm knows it.

    mmdet's ``Bottleneck`` (``with_plugins``, ``after_conv3_plugin_names``, ``norm3_name``; the
    after_conv3 plugins run on ``norm3``'s output): open-mmlab/mmdetection
    ``mmdet/models/backbones/resnet.py`` @ 7fb530c2ba8643bd363027f648f66c1b38ae781e; ResNeXt's
    ``Bottleneck`` subclasses it (installed mmdet 3.3.0 ``mmdet/models/backbones/resnext.py``).
    """
    if getattr(block, 'attention_name', None) == name:  # ean_mm's blocks
        return block.attention_norm
    if isinstance(block, Bottleneck) and block.with_plugins and \
            block.after_conv3_plugin_names[:1] == [name]:  # mmdet's, incl. ResNeXt's
        return block.norm3_name
    return None


def ean_norm_pairs(module: nn.Module) -> 'OrderedDict[str, str]':
    """EAN layer path -> path of the norm layer right before it, for every EAN in ``module``.

    Raises:
        InputError: an EAN whose input is not straight from an affine norm layer (a plugin at
            ``after_conv1`` / ``after_conv2``, or after another plugin).
    """
    modules = dict(module.named_modules())
    pairs: 'OrderedDict[str, str]' = OrderedDict()
    for path in ean_layers(module):
        parent, _, name = path.rpartition('.')
        norm = _norm_before(modules[parent], name)
        full = f'{parent}.{norm}' if parent and norm else norm
        layer = modules.get(full) if full else None
        if layer is None or getattr(layer, 'weight', None) is None or \
                getattr(layer, 'bias', None) is None:
            raise InputError(
                f'EAN layer {path}: its input is not the output of an affine norm layer, so it '
                'cannot start as the plain network from a plain checkpoint (EAN right after a '
                "block's last norm, e.g. mmdet ResNet plugin position 'after_conv3' as the "
                'first plugin, can); load a checkpoint that has EAN tensors instead')
        pairs[path] = full
    return pairs


def start_from_plain(module: nn.Module, state: Mapping[str, torch.Tensor]
                     ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``state`` (a plain checkpoint: no EAN tensors) with the weight and bias of the norm
    before every EAN of ``module`` doubled, and the EAN layers so started.

    Raises:
        InputError: an EAN layer is not fresh (``alpha`` or ``delta`` not 0), or ``state`` lacks
            the norm an EAN follows (or has it in another shape).
    """
    pairs = ean_norm_pairs(module)
    own = module.state_dict()
    stale = [p for p in pairs if torch.count_nonzero(own[f'{p}.alpha']) or
             torch.count_nonzero(own[f'{p}.delta'])]
    if stale:
        raise InputError(
            f'EAN layers not fresh (alpha or delta not 0): {format_keys(stale)}; a plain '
            'checkpoint starts EAN exactly only from alpha = delta = 0 (their initial values)')
    adapted = dict(state)
    for norm in pairs.values():
        for key in (f'{norm}.weight', f'{norm}.bias'):
            if key not in state or state[key].shape != own[key].shape:
                found = 'missing' if key not in state else f'shape {tuple(state[key].shape)}'
                raise InputError(
                    f'plain checkpoint: {key} ({found}), the norm an EAN layer follows, does not '
                    f'fit (expected shape {tuple(own[key].shape)}); it is not a checkpoint of '
                    'the plain twin of this network')
            adapted[key] = state[key] * 2
    return adapted, list(pairs)
