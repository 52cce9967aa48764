"""An ``SSDHead`` that can predict: works around mmdet 3.3.0 issues #11063 / #11780.

Cause. ``mmdet.models.dense_heads.SSDHead.__init__`` calls ``super(AnchorHead, self).__init__``,
skipping ``AnchorHead.__init__``, and re-creates by hand most of what that method sets. It leaves
out ``loss_cls`` (and ``loss_bbox`` / ``fp16_enabled``, which nothing on SSD's code paths reads):
SSD computes its classification loss itself (softmax cross-entropy with hard negative mining in
``SSDHead.loss_by_feat_single``), so training never notices. Prediction does:
``BaseDenseHead._predict_by_feat_single`` evaluates
``getattr(self.loss_cls, 'custom_cls_channels', False)`` to choose the score activation, and
``self.loss_cls`` raises ``AttributeError: 'SSDHead' object has no attribute 'loss_cls'``. So
every ``predict`` / ``Runner.val`` / ``Runner.test`` of an SSD or SSDLite detector crashes.

Fix. :class:`CompatSSDHead` subclasses the stock head unchanged and adds the missing
``loss_cls``: a ``CrossEntropyLoss(use_sigmoid=False)``, which describes what SSD does (softmax
over ``num_classes + 1`` channels, background last, consistent with ``use_sigmoid_cls = False``
and ``cls_out_channels = num_classes + 1`` set by ``SSDHead``). It has no ``custom_cls_channels``,
so prediction takes the softmax branch. The module is informational: training still uses SSD's
own loss, and it has no parameters or buffers, so the ``state_dict`` and checkpoints are those of
``SSDHead``. Constructor arguments are exactly ``SSDHead``'s.
"""
from typing import Any

from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS

__all__ = ['CompatSSDHead']


@MODELS.register_module()
class CompatSSDHead(SSDHead):
    """mmdet's ``SSDHead`` plus the ``loss_cls`` attribute its prediction path reads.

    Drop-in replacement: use ``bbox_head=dict(type='CompatSSDHead', ...)`` with the same arguments
    as ``SSDHead`` (e.g. in ``ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py``). Outputs, losses and
    checkpoint keys are identical to ``SSDHead``'s; only ``predict`` no longer raises.

    Args:
        *args: Positional arguments of ``mmdet.models.dense_heads.SSDHead``.
        **kwargs: Keyword arguments of ``mmdet.models.dense_heads.SSDHead``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SSD classifies with a softmax over num_classes + 1 channels (see module docstring);
        # SSDHead already sets use_sigmoid_cls = False and cls_out_channels accordingly.
        self.loss_cls = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=False))
