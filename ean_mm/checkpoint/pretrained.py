"""``init_cfg=dict(type='Pretrained', ...)`` for ean_mm's backbones, with a key-by-key report.

mmengine's ``Pretrained`` loads with ``strict=False`` and only warns; a plain checkpoint in an
attention backbone would then quietly leave the attention layers at their initial values. Here
the same tensors load in the same order (after the children's own initialisation), the log says
how many loaded and which keys are missing, unexpected or of another shape, and
``strict=True`` turns any mismatch into an :class:`~ean_mm.utils.InputError`.
"""
import logging
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.runner.checkpoint import _load_checkpoint

from ..utils.errors import InputError
from .io import format_keys

__all__ = ['load_pretrained', 'PretrainedLoadingMixin']


def load_pretrained(module: nn.Module,
                    checkpoint: str,
                    prefix: Optional[str] = None,
                    strict: bool = False,
                    map_location: str = 'cpu') -> Dict[str, List]:
    """Copy every tensor of ``checkpoint`` (its ``prefix`` keys, prefix stripped) whose key and
    shape match into ``module``; log and return the report.

    Returns:
        ``loaded``, ``missing`` (in the module only), ``unexpected`` (in the checkpoint only),
        ``shape_mismatch`` (``(key, checkpoint shape, module shape)``).

    Raises:
        InputError: the file does not exist, or ``strict`` and any key does not match.
    """
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise InputError(f'Pretrained checkpoint not found: {checkpoint!r}')
    raw = _load_checkpoint(checkpoint, map_location=map_location, logger='current')
    state = raw.get('state_dict', raw) if isinstance(raw, dict) else raw
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape_mismatch: List[Tuple[str, tuple, tuple]] = [
        (k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    bad = {k for k, _, _ in shape_mismatch}
    loadable = {k: v for k, v in state.items() if k in own and k not in bad}
    report = dict(loaded=sorted(loadable), missing=missing, unexpected=unexpected,
                  shape_mismatch=shape_mismatch)

    source = f'{checkpoint}' + (f' (keys {prefix}*)' if prefix else '')
    summary = f'{type(module).__name__} <- {source}: loaded {len(loadable)}/{len(own)} tensors'
    problems = []
    if missing:
        problems.append(f'missing in checkpoint ({len(missing)}): {format_keys(missing, 20)}')
    if unexpected:
        problems.append(f'unexpected in checkpoint ({len(unexpected)}): '
                        f'{format_keys(unexpected, 20)}')
    if shape_mismatch:
        problems.append('shape mismatch ({}): {}'.format(len(shape_mismatch), format_keys(
            [f'{k} {a} vs {b}' for k, a, b in shape_mismatch], 20)))
    if problems and strict:
        raise InputError(
            summary + '\n  ' + '\n  '.join(problems) +
            '\n  init_cfg strict=True: refusing a partial load. Check that the checkpoint was '
            'trained with this backbone (type, depth, attention) and that the prefix is right.')
    with torch.no_grad():
        module.load_state_dict(loadable, strict=False)
    print_log(summary + ''.join('\n  ' + p for p in problems), logger='current',
              level=logging.WARNING if problems else logging.INFO)
    if hasattr(module, '_params_init_info'):  # only inside a top-level init_weights()
        update_init_info(module, init_info=f'Initialized by Pretrained {source}')
    return report


class PretrainedLoadingMixin:
    """Backbone mixin (first among the bases): ``init_cfg=dict(type='Pretrained', checkpoint,
    prefix=None, map_location='cpu', strict=False)`` goes through :func:`load_pretrained`, any
    other ``init_cfg`` through mmengine."""

    def init_weights(self) -> None:
        init_cfg = self.init_cfg
        if not (isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'):
            super().init_weights()
            return
        # Children first (as mmengine orders a Pretrained init), then the checkpoint.
        self.init_cfg = None
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        load_pretrained(self, init_cfg['checkpoint'], prefix=init_cfg.get('prefix'),
                        strict=init_cfg.get('strict', False),
                        map_location=init_cfg.get('map_location', 'cpu'))
