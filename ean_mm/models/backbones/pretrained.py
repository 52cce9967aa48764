"""Loading ImageNet-pretrained weights into ean_mm backbones with a key-by-key report.

mmengine's ``Pretrained`` initializer loads with ``strict=False`` and only warns about keys that
do not match; loading a plain ResNet checkpoint into an EAN backbone then quietly leaves EAN's
tensors at their initial values. ean_mm's backbones handle ``init_cfg=dict(type='Pretrained',
checkpoint=..., prefix='backbone.')`` themselves: they load the same tensors, in the same order
(after their children's own initialisation, as mmengine does), and report how many tensors were
loaded and which keys are missing, unexpected or of the wrong shape. ``strict=True`` in that
``init_cfg`` turns any mismatch into an error.
"""
import logging
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.runner.checkpoint import _load_checkpoint


class PretrainedMismatchError(RuntimeError):
    """A strict pretrained load found keys that do not match."""


def _format_keys(keys: List[str], limit: int = 20) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


def load_pretrained(module: nn.Module,
                    checkpoint: str,
                    prefix: Optional[str] = None,
                    strict: bool = False,
                    map_location: str = 'cpu') -> Dict[str, List]:
    """Load ``checkpoint`` (optionally only its ``prefix`` keys, prefix stripped) into ``module``.

    Every tensor whose key and shape match is copied; the rest is reported. Returns the report:
    ``loaded``, ``missing`` (in the module, not the checkpoint), ``unexpected`` (in the
    checkpoint, not the module) and ``shape_mismatch`` (``(key, checkpoint shape, module shape)``).

    Raises:
        FileNotFoundError: the checkpoint file does not exist.
        PretrainedMismatchError: ``strict`` and any key is missing, unexpected or mismatched.
    """
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'Pretrained checkpoint not found: {checkpoint!r}')
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
        problems.append(f'missing in checkpoint ({len(missing)}): {_format_keys(missing)}')
    if unexpected:
        problems.append(f'unexpected in checkpoint ({len(unexpected)}): '
                        f'{_format_keys(unexpected)}')
    if shape_mismatch:
        problems.append('shape mismatch ({}): {}'.format(len(shape_mismatch), _format_keys(
            [f'{k} {a} vs {b}' for k, a, b in shape_mismatch])))
    if problems and strict:
        raise PretrainedMismatchError(
            summary + '\n  ' + '\n  '.join(problems) +
            '\n  init_cfg strict=True: refusing a partial load. Check that the checkpoint was '
            'trained with this backbone (type, depth, ean_groups) and the prefix is right, or '
            'convert it with tools/model_converters/ean_checkpoint.py.')
    with torch.no_grad():
        module.load_state_dict(loadable, strict=False)
    print_log(summary + ''.join('\n  ' + p for p in problems), logger='current',
              level=logging.WARNING if problems else logging.INFO)
    if hasattr(module, '_params_init_info'):  # only inside a top-level init_weights()
        update_init_info(module, init_info=f'Initialized by Pretrained {source}')
    return report


class PretrainedReportMixin:
    """Backbone mixin: ``init_cfg=dict(type='Pretrained', checkpoint, prefix=None,
    map_location='cpu', strict=False)`` goes through :func:`load_pretrained`; any other
    ``init_cfg`` through mmengine as usual. Put it first among the bases."""

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
