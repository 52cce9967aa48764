"""Params and FLOPs: mmengine's ``FlopAnalyzer``, one multiply-add = 1 FLOP. Under its jit trace
EAN runs its ``'instance'`` export form (an instance norm, Sigmoid, Mul: :data:`.ean.TRACE_FORM`),
whatever its form for files, counted as mmengine counts a norm with affine (5 FLOPs an element,
like the GroupNorm of the reference path)."""
import logging
import warnings
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ..utils import quiet_mmengine
from .twins import ModelSpec
from .workload import ModelCall, detection_samples, num_classes

__all__ = ['count_params', 'count_flops']


def count_params(model: nn.Module) -> int:
    """All parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, spec: ModelSpec, size: int,
                device: torch.device) -> Tuple[Optional[int], str]:
    """FLOPs of one ``size x size`` image; ``(flops, note)``, the note saying what the count
    covers where it is not the whole model (``(None, reason)`` where a classifier fails)."""
    model = model.eval()
    x = torch.randn(1, 3, size, size, device=device)
    with quiet_mmengine(logging.ERROR):  # unsupported-op chatter
        if spec.kind == 'classifier':
            wrapped, note = ModelCall(model, lambda m, t: m(t, mode='tensor')), ''
        else:
            samples = detection_samples(1, size, num_classes(model), device, with_gt=False)
            wrapped = ModelCall(model, lambda m, t: m._forward(t, samples))
            # Two-stage: the RoI head's share depends on how many proposals the random weights
            # keep, so the count differs between twins for that reason too.
            note = 'incl. RoI head on random-weight proposals' if hasattr(model, 'roi_head') else ''
        try:
            flops = _analyze(wrapped, x)
        except Exception as err:  # e.g. a detector head the tracer cannot follow
            if spec.kind == 'classifier':
                return None, f'FLOPs failed: {type(err).__name__}'
            wrapped = ModelCall(model, lambda m, t: m.extract_feat(t))
            note = 'backbone+neck only'
            flops = _analyze(wrapped, x)
        return flops, note


def _analyze(module: nn.Module, x: torch.Tensor) -> int:
    from mmengine.analysis import FlopAnalyzer
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')
        analyzer = FlopAnalyzer(module, (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return int(analyzer.total())
