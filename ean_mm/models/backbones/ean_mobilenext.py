"""MobileNeXt with EAN in every sandglass block (paper: Integration Strategy)."""
from typing import Optional

from ...registry import MODELS
from .mobilenext import MobileNeXt


@MODELS.register_module()
class EANMobileNeXt(MobileNeXt):
    """:class:`MobileNeXt` with EAN in every sandglass block: after the norm of the block's last
    convolution, before its activation (pw-pw form) and before the shortcut add (per block form:
    :class:`SandglassBlock`). 1.0x ImageNet classifier: 3,540,256 parameters (EAN paper
    Table 3: 3.54M). Keys ``layerX.Y.ean.{gn.weight, gn.bias, alpha, delta}``.

    Args:
        ean_groups: EAN group count ``G`` (paper: 8 for lightweight models). Must divide the
            channels of every block (1.0x: a divisor of 16); the error names those it does not
            divide and the counts that divide them all.
        ean_cfg: Further EAN arguments, e.g. ``dict(omega='l2_mean')``.
        **kwargs: Everything :class:`MobileNeXt` accepts except ``attention_cfg``.
    """

    def __init__(self, ean_groups: int = 8, ean_cfg: Optional[dict] = None, **kwargs) -> None:
        if 'attention_cfg' in kwargs:
            raise TypeError(f'{type(self).__name__} sets attention_cfg itself; use '
                            'ean_mm.MobileNeXt for another attention layer.')
        self.ean_groups = ean_groups
        super().__init__(
            attention_cfg=dict(type='EAN', groups=ean_groups, **(ean_cfg or {})), **kwargs)
