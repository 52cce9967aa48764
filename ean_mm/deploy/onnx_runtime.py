"""An exported ONNX file run on the CPU by onnxruntime or OpenVINO, behind one interface
(:class:`RuntimeSession`); :class:`OnnxDetector` feeds it batches of the data preprocessor's
output, padded to the file's input size as the preprocessor pads (zeros after normalisation,
bottom and right)."""
import json
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


def onnx_session(path: str, threads: Optional[int] = None):
    """An onnxruntime CPU session of ``path`` (``threads``: intra-op threads, default its own)."""
    try:
        import onnxruntime
    except ImportError:
        raise InputError('onnxruntime is not installed: pip install -e ".[deploy]"') from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
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


class _OnnxRuntimeSession(RuntimeSession):
    backend = 'onnxruntime'

    def __init__(self, path: str, threads: Optional[int]) -> None:
        self.session = onnx_session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_shapes = [tuple(i.shape) for i in self.session.get_inputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        return self.session.run(self.output_names, feed)


class _OpenVINOSession(RuntimeSession):
    """OpenVINO's CPU plugin, float32 arithmetic (``INFERENCE_PRECISION_HINT``: CPUs with bf16
    units would otherwise run in bf16), latency hint (one request at a time)."""
    backend = 'openvino'

    def __init__(self, path: str, threads: Optional[int]) -> None:
        try:
            import openvino
        except ImportError:
            raise InputError('openvino is not installed: pip install -e ".[deploy]"') from None
        core = openvino.Core()
        config = {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_PRECISION_HINT': 'f32'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
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
        return [self.request.get_output_tensor(i).data.copy()
                for i in range(len(self.output_names))]


def _onnx_metadata(path: str) -> Dict[str, str]:
    """The file's ``metadata_props`` (read by ``onnx``, without the weights)."""
    try:
        import onnx
    except ImportError:
        raise InputError('onnx is not installed: pip install -e ".[deploy]"') from None
    proto = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def runtime_session(path: str, backend: str = 'onnxruntime',
                    threads: Optional[int] = None) -> RuntimeSession:
    """``path`` compiled by ``backend`` (one of :data:`RUNTIMES`) for the CPU, ``threads``
    intra-op threads (default: the runtime's own)."""
    if backend not in RUNTIMES:
        raise InputError(f'ONNX backend must be one of {RUNTIMES}, got {backend!r}')
    return (_OnnxRuntimeSession if backend == 'onnxruntime' else _OpenVINOSession)(path,
                                                                                   threads)


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

