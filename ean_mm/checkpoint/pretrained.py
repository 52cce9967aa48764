"""``init_cfg=dict(type='Pretrained', ...)`` for ean_mm's backbones, with a key-by-key report, and
EAN networks started exactly from plain checkpoints (:mod:`.plain_start`).

mmengine's ``Pretrained`` loads with ``strict=False`` and only warns; a plain checkpoint in an
attention backbone would then quietly leave the attention layers at their initial values. Here
the same tensors load in the same order (after the children's own initialisation), the log says
which way the load went and what is missing, unexpected or of another shape, and
``strict=True`` refuses a load that leaves any tensor of the module uninitialised. For stock
modules (mmdet's ``ResNet`` with an EAN plugin), ``init_cfg=dict(type='ean_mm.Pretrained',
...)`` does the same.

mmengine's behaviour: open-mmlab/mmengine ``mmengine/model/weight_init.py`` @
3cf1003c535c2a17c8c85490147090191e1ef166 ``PretrainedInit`` (``strict=False``, prefix through
``_load_checkpoint_with_prefix``) and ``mmengine/runner/checkpoint.py`` @
989bb497c5f3b1ece3031f377a117029eb671110 (``state_dict`` entry or the bare dict; its
``load_state_dict`` leaves ``num_batches_tracked`` out of the missing keys, and so does this
module: a file without the BN counters, as saved before torch 0.4.1, loads and says so).
"""
import logging
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.runner.checkpoint import _load_checkpoint

from ..registry import WEIGHT_INITIALIZERS
from ..utils.errors import InputError
from ..utils.preflight import PRETRAINED_TYPES
from .io import format_keys
from .plain_start import EAN_TENSORS, ean_layers, start_from_plain

__all__ = ['load_pretrained', 'PretrainedLoadingMixin', 'EANPretrainedInit']


def _read(checkpoint: str, map_location: str) -> dict:
    if '://' not in checkpoint:
        if not osp.isfile(checkpoint):
            raise InputError(f'Pretrained checkpoint not found: {checkpoint!r}')
        return _load_checkpoint(checkpoint, map_location=map_location, logger='current')
    try:
        return _load_checkpoint(checkpoint, map_location=map_location, logger='current')
    except OSError as err:  # URLError, HTTPError, connection errors: no network or no file
        raise InputError(
            f'Pretrained checkpoint {checkpoint!r} could not be downloaded ({type(err).__name__}: '
            f'{err}). Without network, put the file in torch\'s cache '
            f'({osp.join(torch.hub.get_dir(), "checkpoints")}) or point init_cfg.checkpoint at '
            'a local copy') from err


def load_pretrained(module: nn.Module,
                    checkpoint: str,
                    prefix: Optional[str] = None,
                    strict: bool = False,
                    map_location: str = 'cpu') -> Dict[str, List]:
    """Copy every tensor of ``checkpoint`` (its ``prefix`` keys, prefix stripped) whose key and
    shape match into ``module``; log and return the report.

    A checkpoint without any of ``module``'s EAN tensors is a plain one: the norm before every
    EAN is doubled on the way in, so that the module computes what the plain network computes
    (:func:`~.plain_start.start_from_plain`). One with some of them only is refused.

    Returns:
        ``loaded``, ``missing`` (in the module only; a plain start's EAN tensors not counted),
        ``unexpected`` (in the checkpoint only), ``shape_mismatch`` (``(key, checkpoint shape,
        module shape)``), ``plain_start`` (the EAN layers started so).

    Raises:
        InputError: the file cannot be read, a half EAN checkpoint, a plain start that does not
            fit, or ``strict`` and a tensor of the module is missing or of another shape.
    """
    raw = _read(checkpoint, map_location)
    state = raw.get('state_dict', raw) if isinstance(raw, dict) else raw
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    source = f'{checkpoint}' + (f' (keys {prefix}*)' if prefix else '')
    own = module.state_dict()

    ean_keys = [f'{p}.{t}' for p in ean_layers(module) for t in EAN_TENSORS]
    present = [k for k in ean_keys if k in state]
    plain_start: List[str] = []
    if ean_keys and not present:
        state, plain_start = start_from_plain(module, state)
    elif present and len(present) < len(ean_keys):
        absent = [k for k in ean_keys if k not in state]
        raise InputError(f'{source}: holds {len(present)} of the {len(ean_keys)} EAN tensors of '
                         f'{type(module).__name__} (absent: {format_keys(absent)}): neither an '
                         'EAN checkpoint of this network nor a plain one')
    skipped = set(ean_keys) if plain_start else set()
    missing = [k for k in own if k not in state and k not in skipped]
    # BN batch counters carry no weights (BN reads them only with momentum=None)
    counters = [k for k in missing if k.endswith('num_batches_tracked')]
    missing = [k for k in missing if k not in counters]
    unexpected = [k for k in state if k not in own]
    shape_mismatch: List[Tuple[str, tuple, tuple]] = [
        (k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    bad = {k for k, _, _ in shape_mismatch}
    loadable = {k: v for k, v in state.items() if k in own and k not in bad}
    report = dict(loaded=sorted(loadable), missing=missing, unexpected=unexpected,
                  shape_mismatch=shape_mismatch, plain_start=plain_start)

    kind = (f'plain checkpoint, {len(plain_start)} EAN layers start as the plain network (the '
            'norm before each doubled, EAN fresh)' if plain_start else
            'EAN checkpoint' if ean_keys else 'checkpoint')
    summary = (f'{type(module).__name__} <- {source}: {kind}; loaded {len(loadable)}/'
               f'{len(own) - len(skipped)} tensors')
    problems = []
    if missing:
        problems.append(f'missing in checkpoint ({len(missing)}): {format_keys(missing, 20)}')
    if shape_mismatch:
        problems.append('shape mismatch ({}): {}'.format(len(shape_mismatch), format_keys(
            [f'{k} {a} vs {b}' for k, a, b in shape_mismatch], 20)))
    if own and not loadable:  # not even a partial fit: another network, or the wrong prefix
        raise InputError(
            f'{source} holds none of the {len(own) - len(skipped)} tensors of '
            f'{type(module).__name__} under their names and shapes (its keys: '
            f"{format_keys(list(state), 3) or 'none'}): a checkpoint of another network, or the "
            "wrong init_cfg prefix (e.g. prefix='backbone.' for a detector or classifier "
            'checkpoint)')
    if problems and strict:
        raise InputError(
            summary + '\n  ' + '\n  '.join(problems) +
            '\n  init_cfg strict=True: refusing a partial load. Check that the checkpoint was '
            'trained with this backbone (type, depth, attention) and that the prefix is right.')
    with torch.no_grad():
        module.load_state_dict(loadable, strict=False)
    notes = problems + ([f'not used ({len(unexpected)}): {format_keys(unexpected, 20)}']
                        if unexpected else []) + \
        ([f'{len(counters)} BN num_batches_tracked counters absent: left at their values']
         if counters else [])
    print_log(summary + ''.join('\n  ' + p for p in notes), logger='current',
              level=logging.WARNING if problems else logging.INFO)
    if hasattr(module, '_params_init_info'):  # only inside a top-level init_weights()
        update_init_info(module, init_info=f'Initialized by Pretrained {source}')
    return report


def _load_from_cfg(module: nn.Module, init_cfg: dict) -> Dict[str, List]:
    return load_pretrained(module, init_cfg['checkpoint'], prefix=init_cfg.get('prefix'),
                           strict=init_cfg.get('strict', False),
                           map_location=init_cfg.get('map_location', 'cpu'))


class PretrainedLoadingMixin:
    """Backbone mixin (first among the bases): ``init_cfg=dict(type='Pretrained', checkpoint,
    prefix=None, map_location='cpu', strict=False)`` (or ``type='ean_mm.Pretrained'``) goes
    through :func:`load_pretrained`, any other ``init_cfg`` through mmengine."""

    def init_weights(self) -> None:
        init_cfg = self.init_cfg
        if not (isinstance(init_cfg, dict) and init_cfg.get('type') in PRETRAINED_TYPES):
            super().init_weights()
            return
        # Children first (as mmengine orders a Pretrained init), then the checkpoint.
        self.init_cfg = None
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        _load_from_cfg(self, init_cfg)


@WEIGHT_INITIALIZERS.register_module(name='Pretrained')
class EANPretrainedInit:
    """``init_cfg=dict(type='ean_mm.Pretrained', checkpoint, prefix=None, map_location='cpu',
    strict=False)`` for any module: :func:`load_pretrained` (report, ``strict``, EAN started
    exactly from a plain checkpoint). mmengine applies initializers of other types before the
    children's own ``init_weights``: make it the module's only ``init_cfg``."""

    def __init__(self, checkpoint: str, prefix: Optional[str] = None, strict: bool = False,
                 map_location: str = 'cpu') -> None:
        self.cfg = dict(checkpoint=checkpoint, prefix=prefix, strict=strict,
                        map_location=map_location)

    def __call__(self, module: nn.Module) -> None:
        _load_from_cfg(module, self.cfg)

    def _get_init_info(self) -> str:
        return f'{type(self).__name__}: load from {self.cfg["checkpoint"]}'
