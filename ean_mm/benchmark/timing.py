"""Interleaved timing: each round times every model of a family once, in order (the plain twin
first), so that slow phases of a shared machine hit both sides of a ratio."""
from typing import Dict, List, Sequence, Tuple

from .result import Result
from .runtime import log, minor_faults
from .workload import Bench

__all__ = ['MODES', 'warm_up', 'interleaved_rounds']

#: What a round times: inference batches, training steps.
MODES = ('infer', 'train')


def warm_up(benches: Sequence[Bench], iterations: int, modes: Tuple[str, ...] = MODES) -> None:
    """``iterations`` untimed inference batches, then training steps (of ``modes``), one model
    after the other."""
    for bench in benches:
        for mode in modes:
            fn = bench.infer if mode == 'infer' else bench.train_step
            for i in range(iterations):
                t = bench.timed(fn)
                log(f'[{bench.spec.family}] warm-up {bench.spec.label} {mode} '
                    f'{i + 1}/{iterations}: {t * 1e3:.0f} ms')


def interleaved_rounds(benches: Sequence[Bench], results: Dict[str, Result], rounds: int,
                       iters: int, modes: Tuple[str, ...] = MODES) -> None:
    """Append one inference and one training time (of ``modes``) per round to each model's
    ``infer_s`` and ``train_s`` (seconds, the mean of ``iters`` calls), and on CPU the minor
    page faults of an inference batch to ``infer_faults``."""
    for r in range(rounds):
        parts: List[str] = []
        for mode in modes:
            for bench in benches:
                fn = bench.infer if mode == 'infer' else bench.train_step
                faults = minor_faults()
                t = bench.timed(fn, iters)
                result = results[bench.spec.name]
                getattr(result, f'{mode}_s').append(t)
                if mode == 'infer' and bench.device.type == 'cpu':
                    result.infer_faults.append((minor_faults() - faults) / iters)
                parts.append(f'{bench.spec.name} {mode} {t * 1e3:.0f}')
        log(f'[{benches[0].spec.family}] round {r + 1}/{rounds}: ' + ', '.join(parts) + ' ms')
