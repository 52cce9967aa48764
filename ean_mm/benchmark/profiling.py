"""``torch.profiler`` of a model's inference batches and training steps, self time per
category (EAN, conv, batchnorm, relu, optimizer, other)."""
import os.path as osp
from typing import Dict, List, Tuple

from .runtime import log
from .workload import Bench

__all__ = ['PROFILE_CATEGORIES', 'profile_breakdown', 'profile']

PROFILE_CATEGORIES = ('EAN', 'conv', 'batchnorm', 'relu', 'optimizer', 'other')
_PROFILE_RULES = (('EAN', ('ean_mm::', '_batchnormean')),
                  ('optimizer', ('optimizer.', 'sgd')),
                  ('conv', ('conv', )),
                  ('batchnorm', ('batch_norm', 'batchnorm')),
                  ('relu', ('relu', 'threshold', 'hardtanh')))


def _category(names: List[str]) -> str:
    """Category of a profiler event from its own and its ancestors' names (innermost first); the
    outermost recognised name wins (the BatchNorm kernel inside the BatchNorm+EAN step is EAN,
    the foreach kernels inside ``Optimizer.step`` are optimizer)."""
    found = 'other'
    for name in names:
        low = name.lower()
        for category, keys in _PROFILE_RULES:
            if any(k in low for k in keys):
                found = category
                break
    return found


def profile_breakdown(events, device: bool = False) -> Dict[str, float]:
    """Self time (us; CPU, or the device's with ``device``) per category over a profiler's
    event list."""
    totals = {c: 0.0 for c in PROFILE_CATEGORIES}
    key = 'self_device_time_total' if device else 'self_cpu_time_total'
    for evt in events:
        names, node = [], evt
        while node is not None:
            names.append(node.name)
            node = node.cpu_parent
        totals[_category(names)] += getattr(evt, key, 0.0) or 0.0
    return totals


def profile(bench: Bench, iterations: int, out_dir: str, name: str,
            modes: Tuple[str, ...] = ('infer', 'train')) -> Dict[str, Dict[str, float]]:
    """``iterations`` inference batches and training steps (of ``modes``) under
    ``torch.profiler``: the top-op
    tables go to ``<out_dir>/<name>_profile_<model>_<mode>.txt``; returns ms per iteration by
    category for each mode (self CPU time on CPU, self device time on CUDA)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    cuda = bench.device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    out = {}
    for mode in modes:
        fn = bench.infer if mode == 'infer' else bench.train_step
        log(f'[profile] {bench.spec.label} {mode} x{iterations}')
        with torch_profile(activities=activities) as prof:
            for _ in range(iterations):
                fn()
            bench.sync()
        path = osp.join(out_dir, f'{name}_profile_{bench.spec.name}_{mode}.txt')
        with open(path, 'w') as f:
            f.write(prof.key_averages().table(sort_by=sort, row_limit=40))
        totals = profile_breakdown(prof.events(), device=cuda)
        out[mode] = {k: v / 1e3 / iterations for k, v in totals.items()}
    return out
