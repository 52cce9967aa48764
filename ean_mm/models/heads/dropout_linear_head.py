"""A linear classification head with dropout before it (MobileNeXt's and MobileNetV2's)."""
import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead

from ...registry import MODELS

__all__ = ['DropoutLinearClsHead']


@MODELS.register_module()
class DropoutLinearClsHead(LinearClsHead):
    """mmpretrain's ``LinearClsHead`` with ``Dropout(dropout_rate)`` before ``fc``: the
    classifier of the MobileNeXt authors' network (dropout 0.2, linear 1280 -> 1000). Same
    arguments, parameters and keys (``fc.weight``, ``fc.bias``) as ``LinearClsHead``."""

    def __init__(self, *args, dropout_rate: float = 0.2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dropout = nn.Dropout(dropout_rate)

    def pre_logits(self, feats) -> torch.Tensor:
        return self.dropout(super().pre_logits(feats))
