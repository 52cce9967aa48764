"""An exported ONNX file run on the CPU by onnxruntime or OpenVINO, behind one interface
(:class:`RuntimeSession`); :class:`OnnxDetector` feeds it batches of the data preprocessor's
output, padded to the file's input size as the preprocessor pads (zeros after normalisation,
bottom and right)."""
import collections
import json
import os
import tempfile
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..utils import InputError
from .export import CLASSES_KEY, INPUT_NAMES, OUTPUT_NAMES

__all__ = ['RUNTIMES', 'RuntimeSession', 'runtime_session', 'onnx_session', 'OnnxDetector']

#: The runtimes that run the exported files (CPU).
RUNTIMES = ('onnxruntime', 'openvino')
Dim = Union[int, str, None]  # a fixed size, or a named / unknown (dynamic) one


def onnx_session(path: str, threads: Optional[int] = None, profile: bool = False):
    """An onnxruntime CPU session of ``path`` (``threads``: intra-op threads, default its own;
    ``profile``: onnxruntime's profiler on)."""
    try:
        import onnxruntime
    except ImportError:
        raise InputError('onnxruntime is not installed: pip install -e ".[deploy]"') from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if profile:  # a trace file, written when the profile ends (op_times reads and removes it)
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tempfile.gettempdir(), 'ean_mm_onnxruntime')
    try:
        return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    except Exception as err:  # onnxruntime raises its own types for unreadable files
        raise InputError(f'onnxruntime cannot load {path}: {err}') from None


class RuntimeSession:
    """One ONNX file compiled by a runtime: its input and output names, input shapes, metadata
    (the file's ``metadata_props``) and ``run(feed) -> outputs`` (NumPy arrays, in
    :attr:`output_names` order)."""

    backend: str
    input_names: List[str]
    output_names: List[str]
    input_shapes: List[Tuple[Dim, ...]]
    metadata: Dict[str, str]

    def run(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        raise NotImplementedError

    def op_times(self, skip: int = 0) -> Dict[str, Tuple[float, float]]:
        """The runtime's own per-node times (a session made with ``profile=True``), summed by
        operator type over the runs after the first ``skip``: ``{op type: (ms per run, nodes per
        run)}``. Ends the profile: once per session."""
        raise NotImplementedError


def _per_run(totals: Dict[str, List[float]], runs: int) -> Dict[str, Tuple[float, float]]:
    if runs <= 0:
        raise InputError('no profiled run after the skipped ones: run the session more often')
    return {op: (ms / runs, nodes / runs) for op, (ms, nodes) in
            sorted(totals.items(), key=lambda item: -item[1][0])}


class _OnnxRuntimeSession(RuntimeSession):
    backend = 'onnxruntime'

    def __init__(self, path: str, threads: Optional[int], profile: bool = False) -> None:
        self.session = onnx_session(path, threads, profile)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_shapes = [tuple(i.shape) for i in self.session.get_inputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        return self.session.run(self.output_names, feed)

    def op_times(self, skip: int = 0) -> Dict[str, Tuple[float, float]]:
        # onnxruntime's trace (Chrome format, us): one 'model_run' event per run, one
        # '<node>_kernel_time' event per node run, with the node's operator type in its args
        trace_path = self.session.end_profiling()
        if not trace_path:
            raise InputError('this onnxruntime session was not made with profile=True')
        with open(trace_path) as f:
            events = json.load(f)
        os.remove(trace_path)
        starts = sorted(e['ts'] for e in events if e.get('name') == 'model_run')
        first = starts[skip] if skip < len(starts) else float('inf')
        totals: Dict[str, List[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        for e in events:
            if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time') and e['ts'] >= first:
                totals[e['args']['op_name']][0] += e['dur'] / 1e3
                totals[e['args']['op_name']][1] += 1
        return _per_run(totals, len(starts) - skip)


class _OpenVINOSession(RuntimeSession):
    """OpenVINO's CPU plugin, float32 arithmetic (``INFERENCE_PRECISION_HINT``: CPUs with bf16
    units would otherwise run in bf16), latency hint (one request at a time)."""
    backend = 'openvino'

    def __init__(self, path: str, threads: Optional[int], profile: bool = False) -> None:
        try:
            import openvino
        except ImportError:
            raise InputError('openvino is not installed: pip install -e ".[deploy]"') from None
        core = openvino.Core()
        config = {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_PRECISION_HINT': 'f32'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
        if profile:
            config['PERF_COUNT'] = 'YES'
        self._profiles: Optional[List[Dict[str, List[float]]]] = [] if profile else None
        try:
            model = core.read_model(path)
            self.compiled = core.compile_model(model, 'CPU', config)
        except Exception as err:  # OpenVINO raises RuntimeError with the frontend's reason
            raise InputError(f'OpenVINO cannot load {path}: {err}') from None
        self.request = self.compiled.create_infer_request()
        self.input_names = [i.get_any_name() for i in model.inputs]
        self.output_names = [o.get_any_name() for o in model.outputs]
        self.input_shapes = [tuple(d.get_length() if d.is_static else None
                                   for d in i.get_partial_shape()) for i in model.inputs]
        self.metadata = _onnx_metadata(path)

    def run(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        self.request.infer(feed)
        if self._profiles is not None:  # OpenVINO's counters hold the last run only
            run: Dict[str, List[float]] = collections.defaultdict(lambda: [0.0, 0.0])
            for node in self.request.get_profiling_info():
                if node.status == node.Status.EXECUTED:
                    run[node.node_type][0] += node.real_time.total_seconds() * 1e3
                    run[node.node_type][1] += 1
            self._profiles.append(run)
        return [self.request.get_output_tensor(i).data.copy()
                for i in range(len(self.output_names))]

    def op_times(self, skip: int = 0) -> Dict[str, Tuple[float, float]]:
        if self._profiles is None:
            raise InputError('this OpenVINO session was not made with profile=True')
        totals: Dict[str, List[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        for run in self._profiles[skip:]:
            for op, (ms, nodes) in run.items():
                totals[op][0] += ms
                totals[op][1] += nodes
        runs, self._profiles = len(self._profiles) - skip, None
        return _per_run(totals, runs)


def _onnx_metadata(path: str) -> Dict[str, str]:
    """The file's ``metadata_props`` (read by ``onnx``, without the weights)."""
    try:
        import onnx
    except ImportError:
        raise InputError('onnx is not installed: pip install -e ".[deploy]"') from None
    proto = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def runtime_session(path: str, backend: str = 'onnxruntime', threads: Optional[int] = None,
                    profile: bool = False) -> RuntimeSession:
    """``path`` compiled by ``backend`` (one of :data:`RUNTIMES`) for the CPU, ``threads``
    intra-op threads (default: the runtime's own), ``profile``: the runtime's own per-node
    timing on (:meth:`RuntimeSession.op_times`)."""
    if backend not in RUNTIMES:
        raise InputError(f'ONNX backend must be one of {RUNTIMES}, got {backend!r}')
    return (_OnnxRuntimeSession if backend == 'onnxruntime' else _OpenVINOSession)(
        path, threads, profile)


class OnnxDetector:
    """``OnnxDetector(path, backend=...)(inputs) -> (dets, labels)`` as tensors, for ``inputs
    (N, 3, h, w)`` with ``h, w`` at most the file's input size; ``backend`` one of
    :data:`RUNTIMES`."""

    def __init__(self, path: str, threads: Optional[int] = None,
                 backend: str = 'onnxruntime') -> None:
        self.session = runtime_session(path, backend, threads)
        inputs, outputs = self.session.input_names, self.session.output_names
        if inputs != INPUT_NAMES or outputs != OUTPUT_NAMES:
            raise InputError(f'{path}: inputs {inputs} and outputs {outputs}, not the '
                             f'{INPUT_NAMES} -> {OUTPUT_NAMES} of tools/deployment/export_onnx.py')
        meta = self.session.metadata
        #: The class names it was exported with (``None``: a file without them).
        self.classes: Optional[Tuple[str, ...]] = (
            tuple(json.loads(meta[CLASSES_KEY])) if CLASSES_KEY in meta else None)
        batch, _, height, width = self.session.input_shapes[0]
        self.batch = batch if isinstance(batch, int) else None  # None: any batch size
        self.shape: Tuple[int, int] = (height, width)

    def pad(self, inputs: Tensor) -> Tensor:
        """``inputs`` zero-padded at the bottom and right to the file's input size."""
        h, w = inputs.shape[-2:]
        if h > self.shape[0] or w > self.shape[1]:
            raise InputError(f'the batch is {h}x{w}, larger than the exported input '
                             f'{self.shape[0]}x{self.shape[1]}; export with --shape {h} {w} '
                             '(or larger) or resize smaller in the config\'s test pipeline')
        return torch.nn.functional.pad(inputs, (0, self.shape[1] - w, 0, self.shape[0] - h))

    def __call__(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        if self.batch is not None and inputs.shape[0] != self.batch:
            raise InputError(f'the file takes batches of {self.batch}, got {inputs.shape[0]}; '
                             'export with --dynamic-batch for other sizes')
        x = self.pad(inputs).float().contiguous().numpy()
        dets, labels = self.session.run({INPUT_NAMES[0]: x})
        return torch.from_numpy(dets), torch.from_numpy(labels)

