"""A detector as an ONNX file: :func:`.end2end_detector` exported with torch's default (dynamo)
exporter, :func:`.nms_mask` translated to ``NonMaxSuppression``, checked by ``onnx.checker``
before it is written."""
import json
import math
from typing import Tuple

import torch
from torch import nn

from ..utils import InputError, atomic_write
from .end2end import end2end_detector
from .nms_mask import onnx_translation_table

INPUT_NAMES = ['input']
OUTPUT_NAMES = ['dets', 'labels']
#: Metadata key of the class names the detector was trained on (a JSON list).
CLASSES_KEY = 'ean_mm.classes'


def _pad_divisor(cfg) -> int:
    return int(cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1) or 1)


def input_shape_of(cfg) -> Tuple[int, int]:
    """``(H, W)`` of the batches the config's test pipeline and data preprocessor make of a
    landscape image: a fixed ``Resize`` scale, or a kept-ratio one's short and long side, rounded
    up to the preprocessor's ``pad_size_divisor``."""
    from ..apis import test_pipeline
    resize = [s for s in test_pipeline(cfg) if s.get('type', '').split('.')[-1] == 'Resize']
    if not resize or resize[0].get('scale') is None:
        raise InputError('the test pipeline has no Resize with a scale; give --shape H W')
    w, h = resize[0]['scale']
    if resize[0].get('keep_ratio', False):
        h, w = min(w, h), max(w, h)
    divisor = _pad_divisor(cfg)
    return math.ceil(h / divisor) * divisor, math.ceil(w / divisor) * divisor


def check_input_shape(cfg, shape: Tuple[int, int]) -> None:
    """Refuse a shape the config's data preprocessor cannot make."""
    divisor = _pad_divisor(cfg)
    if any(s <= 0 or s % divisor for s in shape):
        raise InputError(f'--shape {shape[0]} {shape[1]}: the data preprocessor pads batches to '
                         f'multiples of {divisor}; give a shape of such multiples, e.g. '
                         f'{math.ceil(shape[0] / divisor) * divisor} '
                         f'{math.ceil(shape[1] / divisor) * divisor}')


def export_onnx(detector: nn.Module, path: str, shape: Tuple[int, int], batch_size: int = 1,
                dynamic_batch: bool = False, opset: int = 18,
                verbose: bool = False):
    """Write ``detector`` (an mmdet detector in eval mode) to ``path``: input ``input``
    ``(N, 3, H, W)`` float32, outputs ``dets (N, K, 5)`` and ``labels (N, K)``; ``N`` named
    ``batch`` with ``dynamic_batch``; the detector's ``classes`` (if any) as metadata
    ``ean_mm.classes``. Returns the checked ``onnx.ModelProto``; nothing is
    written on failure."""
    try:
        import onnx
    except ImportError:
        raise InputError('export needs onnx, onnxscript and onnxruntime: '
                         'pip install -e ".[deploy]"') from None
    model = end2end_detector(detector)
    # torch.export fixes a size-1 axis to 1: trace a dynamic batch with two images
    x = torch.randn(max(batch_size, 2) if dynamic_batch else batch_size, 3, *shape)
    dynamic = ({0: torch.export.Dim('batch', min=1, max=256)}, ) if dynamic_batch else None
    with torch.no_grad():
        program = torch.onnx.export(
            model, (x, ), None, dynamo=True, input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES, opset_version=opset, dynamic_shapes=dynamic,
            custom_translation_table=onnx_translation_table(), verbose=verbose,
            optimize=True)
    proto = program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    if dynamic_batch and not batch_dim.dim_param:
        raise RuntimeError(f'the exported batch axis is fixed to {batch_dim.dim_value}, '
                           'not dynamic')
    classes = getattr(detector, 'classes', None)  # init_model: the checkpoint's dataset_meta
    if classes:  # tools/deployment/onnx_infer.py checks them against its config
        entry = proto.metadata_props.add()
        entry.key, entry.value = CLASSES_KEY, json.dumps([str(c) for c in classes])
    with atomic_write(path) as f:
        onnx.save(proto, f)
    return proto
