"""EAN-ResNet: ResNet with EAN in the last layer of every residual block."""
from typing import Optional

from ...registry import MODELS
from .attention_resnet import AttentionResNet


@MODELS.register_module()
class EANResNet(AttentionResNet):
    """:class:`AttentionResNet` with ``attention_cfg=dict(type='EAN', groups=ean_groups,
    **ean_cfg)``: EAN after the block's last norm, before the residual add (paper: Integration
    Strategy). Keys ``layerX.Y.ean.{gn.weight, gn.bias, alpha, delta}``.

    Args:
        ean_groups: ``G`` (paper: 64 for larger models); must divide every stage's channels.
        ean_cfg: Further :class:`~ean_mm.models.EAN` arguments, e.g. ``omega='l2_mean'``.
        **kwargs: :class:`AttentionResNet`'s (mmdet ``ResNet``'s) arguments.
    """

    def __init__(self, depth: int, ean_groups: int = 64, ean_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if 'attention_cfg' in kwargs:
            raise TypeError(f'{type(self).__name__} sets attention_cfg itself; use '
                            'ean_mm.AttentionResNet for another attention layer.')
        self.ean_groups = ean_groups
        super().__init__(depth, attention_cfg=dict(type='EAN', groups=ean_groups,
                                                   **(ean_cfg or {})), **kwargs)
