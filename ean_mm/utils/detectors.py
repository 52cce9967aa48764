"""Facts about an mmdet detector that several tools read."""
from typing import Optional

import torch.nn as nn

__all__ = ['box_head_classes']


def box_head_classes(model: nn.Module) -> Optional[int]:
    """The classes of a detector's box head: ``bbox_head`` (single-stage), else
    ``roi_head.bbox_head`` (the last stage's for Cascade R-CNN); ``None`` without one."""
    heads = [getattr(model, 'bbox_head', None),
             getattr(getattr(model, 'roi_head', None), 'bbox_head', None)]
    if isinstance(heads[1], nn.ModuleList):  # Cascade R-CNN: one box head per stage
        heads[1] = heads[1][-1]
    for head in heads:
        if head is not None and hasattr(head, 'num_classes'):
            return int(head.num_classes)
    return None
