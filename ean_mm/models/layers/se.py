"""Squeeze-and-Excitation (Hu, Shen & Sun, CVPR 2018), a baseline of the EAN paper."""
import torch
import torch.nn as nn
from ...registry import MODELS


@MODELS.register_module()
class SE(nn.Module):
    """Squeeze-and-Excitation: ``y = x * sigmoid(W2 relu(W1 GAP(x) + b1) + b2)``.

    ``W1: C -> max(min_channels, C // reduction)``, ``W2`` back to ``C``, both 1x1 convolutions
    with bias. With ``reduction=16`` after every ResNet-50 bottleneck's ``bn3`` this is
    SE-ResNet-50 (28,088,024 parameters as a 1000-class classifier). Keys ``fc1.{weight,bias}``,
    ``fc2.{weight,bias}``.

    Args:
        in_channels: ``C``.
        reduction: ``r`` (hidden width ``C // r``, floor, as in the reference SE-Net).
        min_channels: Lower bound of the hidden width.
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
