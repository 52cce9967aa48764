"""Coordinate Attention (Hou, Zhou & Feng, CVPR 2021), a baseline of the EAN paper."""
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from ...registry import MODELS


@MODELS.register_module()
class CoordAttention(nn.Module):
    """Coordinate Attention: channel attention factorised along the two spatial directions.

    For ``x`` of shape ``(N, C, H, W)``:

    1. pool along each direction: ``z_h = mean_W x`` (``N, C, H``), ``z_w = mean_H x``
       (``N, C, W``);
    2. concatenate along the spatial axis (``N, C, H + W``), 1x1 convolution ``C -> mip``
       (with bias), BatchNorm and h-swish, with ``mip = max(min_channels, C // reduction)``;
    3. split back into the ``H`` and ``W`` parts, a 1x1 convolution ``mip -> C`` (with bias)
       and a sigmoid on each give ``a_h`` (``N, C, H, 1``) and ``a_w`` (``N, C, 1, W``);
    4. ``y = x * a_h * a_w``.

    Checkpoint format: ``conv1.{weight,bias}``, ``bn1.{weight,bias,running_mean,running_var,
    num_batches_tracked}``, ``conv_h.{weight,bias}``, ``conv_w.{weight,bias}``.

    Args:
        in_channels: Number of channels ``C`` (input and output).
        reduction: Reduction ratio (CA paper: 32).
        min_channels: Lower bound of the hidden width ``mip`` (CA paper: 8).
        norm_cfg: Normalisation after the shared convolution (BatchNorm by default).
    """

    _abbr_ = 'ca'  # module name given by mmcv's build_plugin_layer: ``layerX.Y.ca``

    def __init__(self,
                 in_channels: int,
                 reduction: int = 32,
                 min_channels: int = 8,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        if reduction < 1 or min_channels < 1:
            raise ValueError(f'CoordAttention: reduction ({reduction}) and min_channels '
                             f'({min_channels}) must be positive.')
        self.in_channels = in_channels
        self.reduction = reduction
        self.mid_channels = max(min_channels, in_channels // reduction)
        mip = self.mid_channels
        self.conv1 = nn.Conv2d(in_channels, mip, 1, bias=True)
        _, self.bn1 = build_norm_layer(norm_cfg, mip)
        self.act = nn.Hardswish()  # h_swish(x) = x * ReLU6(x + 3) / 6
        self.conv_h = nn.Conv2d(mip, in_channels, 1, bias=True)
        self.conv_w = nn.Conv2d(mip, in_channels, 1, bias=True)

    def attention(self, x: torch.Tensor):
        """The two direction-aware weights ``a_h`` ``(N, C, H, 1)`` and ``a_w`` ``(N, C, 1, W)``."""
        h, w = x.shape[2:]
        pooled_h = x.mean(dim=3, keepdim=True)  # (N, C, H, 1): X Avg Pool
        pooled_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (N, C, W, 1): Y Avg Pool
        y = self.act(self.bn1(self.conv1(torch.cat([pooled_h, pooled_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))
        a_w = torch.sigmoid(self.conv_w(y_w.transpose(2, 3)))
        return a_h, a_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'CoordAttention expects (N, {self.in_channels}, H, W) input, '
                             f'got shape {tuple(x.shape)}.')
        a_h, a_w = self.attention(x)
        return x * a_h * a_w

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, reduction={self.reduction}, '
                f'mid_channels={self.mid_channels}')
