"""Squeeze-and-Excitation (Hu, Shen & Sun, CVPR 2018): a comparison baseline of the EAN paper."""
import torch
import torch.nn as nn
from mmengine.registry import MODELS


@MODELS.register_module()
class SE(nn.Module):
    """Squeeze-and-Excitation channel attention, as in SE-ResNet-50.

    ``y = x * sigmoid(W2 relu(W1 GAP(x) + b1) + b2)`` with ``W1: C -> C // reduction`` and
    ``W2: C // reduction -> C`` (both with bias, written as 1x1 convolutions). With
    ``reduction=16`` after ``conv3 -> bn3`` of every ResNet-50 bottleneck this is the standard
    SE-ResNet-50 (28,088,024 parameters as a 1000-class classifier; EAN paper Table 3: 28.09M).

    Registered in MMEngine's root ``MODELS`` as ``SE`` (mmdet's and mmpretrain's own
    ``SELayer`` take other arguments), so both scopes find it, and usable as an mmcv plugin
    taking ``in_channels``, e.g. in mmdet's ResNet::

        plugins=[dict(cfg=dict(type='SE', reduction=16), position='after_conv3')]

    or as ``attention_cfg=dict(type='SE')`` of :class:`MobileNeXt`.

    Checkpoint format: ``fc1.{weight,bias}`` (``(C/r, C, 1, 1)``, ``(C/r,)``) and
    ``fc2.{weight,bias}`` (``(C, C/r, 1, 1)``, ``(C,)``).

    Args:
        in_channels: Number of channels ``C``.
        reduction: Reduction ratio ``r``; the hidden width is ``C // r`` (floor, as in the
            reference SE-Net), at least ``min_channels``.
        min_channels: Lower bound of the hidden width (1: plain ``C // r`` whenever it is
            positive).
    """

    _abbr_ = 'se'  # module name given by mmcv's build_plugin_layer: ``layerX.Y.se``

    def __init__(self, in_channels: int, reduction: int = 16, min_channels: int = 1) -> None:
        super().__init__()
        if reduction < 1 or min_channels < 1:
            raise ValueError(f'SE: reduction ({reduction}) and min_channels ({min_channels}) '
                             f'must be positive.')
        self.in_channels = in_channels
        self.reduction = reduction
        self.mid_channels = max(min_channels, in_channels // reduction)
        self.fc1 = nn.Conv2d(in_channels, self.mid_channels, 1, bias=True)
        self.fc2 = nn.Conv2d(self.mid_channels, in_channels, 1, bias=True)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights ``(N, C, 1, 1)`` in ``(0, 1)``."""
        s = x.mean(dim=(2, 3), keepdim=True)  # squeeze: global average pooling
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))  # excitation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'SE expects (N, {self.in_channels}, H, W) input, '
                             f'got shape {tuple(x.shape)}.')
        return x * self.attention(x)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, reduction={self.reduction}, '
                f'mid_channels={self.mid_channels}')
