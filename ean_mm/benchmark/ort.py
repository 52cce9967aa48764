"""onnxruntime (CPU) inference of exported models: the deployment cost, timed in interleaved
rounds like the PyTorch runs."""
import os.path as osp
import tempfile
from typing import Dict, Optional, Sequence

import torch

from .result import Result
from .runtime import log
from .workload import Bench, ModelCall

__all__ = ['exported_session', 'measure_onnxruntime']


def exported_session(bench: Bench, path: str, threads: Optional[int]):
    """``bench``'s model exported to ``path`` (classifiers: logits; detectors: the whole
    detector, NMS included, as tools/deployment/export_onnx.py writes it) in onnxruntime."""
    from ..deploy import export_onnx, onnx_session
    model = bench.model.eval()
    if bench.spec.kind == 'detector':
        export_onnx(model, path, tuple(bench.inputs.shape[-2:]), bench.inputs.shape[0])
    else:
        # The TorchScript-based exporter: the same graph, written faster.
        with torch.no_grad():
            torch.onnx.export(ModelCall(model, lambda m, t: m(t, mode='tensor')),
                              (bench.inputs.cpu(), ), path, dynamo=False)
    return onnx_session(path, threads)


def measure_onnxruntime(benches: Sequence[Bench], results: Dict[str, Result], warmup: int,
                        rounds: int, iters: int, threads: Optional[int]) -> None:
    """Append one onnxruntime batch time per round to each model's ``ort_s``."""
    family = benches[0].spec.family
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for i, bench in enumerate(benches):
            log(f'[{family}] exporting {bench.spec.label} to ONNX')
            session = exported_session(bench, osp.join(folder, f'{i}.onnx'), threads)
            feed = {session.get_inputs()[0].name: bench.inputs.float().cpu().numpy()}
            runs.append((bench, lambda s=session, f=feed: s.run(None, f)))
        for bench, run in runs:
            for _ in range(warmup):
                run()
        for r in range(rounds):
            parts = []
            for bench, run in runs:
                t = bench.timed(run, iters)
                results[bench.spec.name].ort_s.append(t)
                parts.append(f'{bench.spec.name} {t * 1e3:.0f}')
            log(f'[{family}] onnxruntime round {r + 1}/{rounds}: ' + ', '.join(parts) + ' ms')
