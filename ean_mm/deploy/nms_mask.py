"""``ean_mm::nms_mask``: greedy NMS of every row of a batch, as a fixed-shape keep mask.

ONNX ``NonMaxSuppression`` returns a variable number of ``(batch, class, box)`` indices; scattered
back into a mask of the scores' shape, every tensor after it keeps a shape known at export, so
the rest of a detector's post-processing exports as ordinary operators. Row ``r`` keeps the boxes
greedy NMS keeps among ``scores[r] > score_threshold``, suppressing IoU ``> iou_threshold``
(mmcv's ``nms`` and ONNX's agree on both comparisons), at most ``max_per_row`` of them.
"""
from typing import Any, Dict

import torch
import torchvision
from torch import Tensor


@torch.library.custom_op('ean_mm::nms_mask', mutates_args=())
def nms_mask(boxes: Tensor, scores: Tensor, iou_threshold: float, score_threshold: float,
             max_per_row: int) -> Tensor:
    """``boxes (R, B, 4)`` x1y1x2y2, ``scores (R, B)`` → ``keep (R, B)`` bool."""
    keep = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    for row in range(scores.shape[0]):
        candidates = (scores[row] > score_threshold).nonzero().squeeze(1)
        kept = torchvision.ops.nms(boxes[row, candidates].float(),
                                   scores[row, candidates].float(), iou_threshold)
        keep[row, candidates[kept[:max_per_row]]] = True
    return keep


@nms_mask.register_fake
def _nms_mask_fake(boxes: Tensor, scores: Tensor, iou_threshold: float,
                   score_threshold: float, max_per_row: int) -> Tensor:
    return scores.new_empty(scores.shape, dtype=torch.bool)


def _nms_mask_onnx(boxes: Any, scores: Any, iou_threshold: float, score_threshold: float,
                   max_per_row: int) -> Any:
    """The ONNX graph of :func:`nms_mask` (onnxscript, opset 18): NonMaxSuppression with a row
    per batch entry and one class, its ``(row, box)`` indices scattered into zeros."""
    from onnxscript import opset18 as op
    from onnxscript.onnx_types import BOOL
    selected = op.NonMaxSuppression(
        boxes, op.Unsqueeze(scores, [1]), op.Constant(value_ints=[max_per_row]),
        op.Constant(value_floats=[iou_threshold]), op.Constant(value_floats=[score_threshold]))
    row_box = op.Gather(selected, op.Constant(value_ints=[0, 2]), axis=1)
    ones = op.Expand(op.Constant(value_floats=[1.0]), op.Shape(selected, start=0, end=1))
    zeros = op.ConstantOfShape(op.Shape(scores))  # float32 zeros
    return op.Cast(op.ScatterND(zeros, row_box, ones), to=BOOL.dtype)


def onnx_translation_table() -> Dict[Any, Any]:
    """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``."""
    return {torch.ops.ean_mm.nms_mask.default: _nms_mask_onnx}
