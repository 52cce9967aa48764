"""An exported detector in onnxruntime: batches of the data preprocessor's output, padded to the
file's input size as the preprocessor pads (zeros after normalisation, bottom and right)."""
import json
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..utils import InputError
from .export import CLASSES_KEY, INPUT_NAMES, OUTPUT_NAMES


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


class OnnxDetector:
    """``OnnxDetector(path)(inputs) -> (dets, labels)`` as tensors, for ``inputs (N, 3, h, w)``
    with ``h, w`` at most the file's input size."""

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        self.session = onnx_session(path, threads)
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != INPUT_NAMES or outputs != OUTPUT_NAMES:
            raise InputError(f'{path}: inputs {inputs} and outputs {outputs}, not the '
                             f'{INPUT_NAMES} -> {OUTPUT_NAMES} of tools/deployment/export_onnx.py')
        meta = self.session.get_modelmeta().custom_metadata_map
        #: The class names it was exported with (``None``: a file without them).
        self.classes: Optional[Tuple[str, ...]] = (
            tuple(json.loads(meta[CLASSES_KEY])) if CLASSES_KEY in meta else None)
        batch, _, height, width = self.session.get_inputs()[0].shape
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
        dets, labels = self.session.run(OUTPUT_NAMES, {INPUT_NAMES[0]: x})
        return torch.from_numpy(dets), torch.from_numpy(labels)
