"""An ``SSDHead`` that can predict (mmdet 3.3.0 issues #11063 / #11780; ``docs/compat.md``)."""
from typing import Any

from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS as MMDET_MODELS

from ...registry import MODELS

__all__ = ['CompatSSDHead']


@MODELS.register_module()
class CompatSSDHead(SSDHead):
    """mmdet's ``SSDHead`` plus the ``loss_cls`` its prediction path reads.

    ``loss_cls`` is softmax cross-entropy, what SSD computes; it has no parameters, and SSD's
    training loss does not use it. Same arguments, outputs, losses and keys as ``SSDHead``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_cls = MMDET_MODELS.build(dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False))
