"""Exported models in the CPU runtimes (onnxruntime, OpenVINO): the deployment cost, timed in
interleaved rounds like the PyTorch runs; EAN models optionally in several export forms."""
import os.path as osp
import tempfile
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import torch

from ..models import EAN, ean_export_form
from ..models.layers.ean_export import EXPORT_FORMS
from ..utils import InputError
from .result import Result
from .runtime import log
from .workload import Bench, ModelCall

if TYPE_CHECKING:
    from ..deploy import RuntimeSession

__all__ = ['export_bench', 'runtime_key', 'measure_runtimes']


def export_bench(bench: Bench, path: str, form: Optional[str] = None) -> None:
    """Write ``bench``'s model to ``path`` (classifiers: logits; detectors: the whole detector,
    NMS included, as tools/deployment/export_onnx.py writes it), its EAN layers in export form
    ``form`` (``None``: :attr:`.EAN.export_form`)."""
    from ..deploy import export_onnx
    model = bench.model.eval()
    with ean_export_form(model, form):
        if bench.spec.kind == 'detector':
            export_onnx(model, path, tuple(bench.inputs.shape[-2:]), bench.inputs.shape[0])
        else:
            # The TorchScript-based exporter: the same graph, written faster.
            with torch.no_grad():
                torch.onnx.export(ModelCall(model, lambda m, t: m(t, mode='tensor')),
                                  (bench.inputs.cpu(), ), path, dynamo=False)


def runtime_key(runtime: str, form: Optional[str] = None) -> str:
    """The key of a runtime's series in :attr:`.Result.runtime_s`: ``runtime`` for the default
    export form, ``runtime:form`` for another."""
    return runtime if form in (None, EXPORT_FORMS[0]) else f'{runtime}:{form}'


def measure_runtimes(benches: Sequence[Bench], results: Dict[str, Result], warmup: int,
                     rounds: int, iters: int, threads: Optional[int], runtimes: Sequence[str],
                     forms: Optional[Sequence[str]] = None, profile: int = 0) -> None:
    """Append one batch time per round and runtime to each model's ``runtime_s``; EAN models
    once per export form of ``forms`` (``None``: the default one). With ``profile``, then that
    many batches in a new session with the runtime's own profiler, after ``warmup`` more:
    operator types' times into ``runtime_profile`` (:meth:`.RuntimeSession.op_times`)."""
    from ..deploy import end2end_detector, runtime_session
    family = benches[0].spec.family
    forms = list(forms or [EXPORT_FORMS[0]])
    # one entry a file and runtime: bench, runtime key, file, runtime, session, feed
    exported: List[Tuple[Bench, str, str, str, 'RuntimeSession', dict]] = []
    with tempfile.TemporaryDirectory() as folder:
        for i, bench in enumerate(benches):
            if bench.spec.kind == 'detector':
                try:
                    end2end_detector(bench.model)
                except InputError as err:  # Mask / Cascade R-CNN: no runtime rows
                    log(f'[{family}] {bench.spec.label} is not exported: {err}')
                    continue
            has_ean = any(isinstance(m, EAN) for m in bench.model.modules())
            for form in (forms if has_ean else [None]):
                path = osp.join(folder, f'{i}-{form}.onnx')
                log(f'[{family}] exporting {bench.spec.label}' +
                    (f' (EAN export form {form})' if form else '') + ' to ONNX')
                export_bench(bench, path, form)
                feed_x = bench.inputs.float().cpu().numpy()
                for runtime in runtimes:
                    session = runtime_session(path, runtime, threads)
                    exported.append((bench, runtime_key(runtime, form), path, runtime, session,
                                     {session.input_names[0]: feed_x}))
        for _, _, _, _, session, feed in exported:
            for _ in range(warmup):
                session.run(feed)
        for r in range(rounds):
            parts = []
            for bench, key, _, _, session, feed in exported:
                t = bench.timed(lambda: session.run(feed), iters)
                results[bench.spec.name].runtime_s.setdefault(key, []).append(t)
                parts.append(f'{bench.spec.name} {key} {t * 1e3:.0f}')
            log(f'[{family}] runtimes round {r + 1}/{rounds}: ' + ', '.join(parts) + ' ms')
        for bench, key, path, runtime, _, feed in (exported if profile else []):
            log(f'[profile] {bench.spec.label} {key} x{profile}')
            session = runtime_session(path, runtime, threads, profile=True)
            for _ in range(warmup + profile):
                session.run(feed)
            results[bench.spec.name].runtime_profile[key] = session.op_times(skip=warmup)
