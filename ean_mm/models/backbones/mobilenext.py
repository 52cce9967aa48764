"""MobileNeXt: the sandglass network of Zhou et al., ECCV 2020."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.utils import make_divisible
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils import checkpoint as cp

from ...checkpoint.pretrained import PretrainedLoadingMixin
from ...registry import MODELS
from ..layers.attention import build_attention_layer


class SandglassBlock(BaseModule):
    """Sandglass block (Zhou et al. 2020, Fig. 3(b)), optionally with an attention layer.

    ``dw3x3 + BN + act -> pw reduce to in/t + BN -> pw expand to out + BN + act
    -> dw3x3 (stride) + BN [-> attention]`` plus an identity shortcut when ``stride == 1`` and
    ``in_channels == out_channels``. The attention layer (EAN in EAN-MobileNeXt) re-calibrates
    the output of the last convolution before the shortcut add (paper: Integration Strategy).
    The reduced width ``in/t`` is rounded to a multiple of 8 as MobileNets do.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 expand_ratio: int,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 attention_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        self.with_cp = with_cp
        self.use_shortcut = stride == 1 and in_channels == out_channels
        mid_channels = make_divisible(in_channels / expand_ratio, 8)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.conv = nn.Sequential(
            ConvModule(in_channels, in_channels, 3, padding=1, groups=in_channels,
                       act_cfg=act_cfg, **common),
            ConvModule(in_channels, mid_channels, 1, act_cfg=None, **common),
            ConvModule(mid_channels, out_channels, 1, act_cfg=act_cfg, **common),
            ConvModule(out_channels, out_channels, 3, stride=stride, padding=1,
                       groups=out_channels, act_cfg=None, **common))
        self.attention_name = None
        if attention_cfg is not None:
            self.attention_name, attention = build_attention_layer(attention_cfg, out_channels)
            self.add_module(self.attention_name, attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:

        def _inner_forward(x):
            out = self.conv(x)
            if self.attention_name is not None:
                out = getattr(self, self.attention_name)(out)
            return x + out if self.use_shortcut else out

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(_inner_forward, x, use_reentrant=False)
        return _inner_forward(x)


@MODELS.register_module()
class MobileNeXt(PretrainedLoadingMixin, BaseModule):
    """MobileNeXt backbone (Zhou et al., "Rethinking Bottleneck Structure for Efficient Mobile
    Network Design", ECCV 2020), with arguments in the manner of mmdet's ``MobileNetV2``.

    Stem: conv3x3, 32 channels, stride 2. Then eight stages ``layer1..layer8`` of sandglass
    blocks, ``(t, c, n, s)`` = expansion, channels, repeats, first stride:
    (2, 96, 1, 2), (6, 144, 1, 1), (6, 192, 3, 2), (6, 288, 3, 2), (6, 384, 4, 1),
    (6, 576, 4, 2), (6, 960, 3, 1), (6, 1280, 1, 1). Output strides of the stages:
    4, 4, 8, 16, 16, 32, 32, 32.

    Args:
        widen_factor: Width multiplier; every channel count becomes a multiple of 8.
        out_indices: Stages (0..7) whose outputs are returned. SSDLite uses (4, 7): strides 16
            and 32, 384 and 1280 channels.
        frozen_stages: -1 freezes nothing; 0 the stem; k the stem and ``layer1..layerk``.
        conv_cfg, norm_cfg, act_cfg: Layer configs (BN and ReLU6 by default).
        attention_cfg: Optional attention layer (a registered plugin taking ``in_channels``)
            after the last convolution of every sandglass block, e.g. ``dict(type='EAN',
            groups=8)``; see :class:`EANMobileNeXt`.
        norm_eval: Keep BN layers in eval mode during training (frozen running stats).
        with_cp: Gradient checkpointing of each block.
        init_cfg: Initialization config; Kaiming convs and unit norms by default. A
            ``Pretrained`` one reports missing / unexpected keys and accepts ``strict=True``.
    """

    arch_settings = [[2, 96, 1, 2], [6, 144, 1, 1], [6, 192, 3, 2], [6, 288, 3, 2],
                     [6, 384, 4, 1], [6, 576, 4, 2], [6, 960, 3, 1], [6, 1280, 1, 1]]

    def __init__(self,
                 widen_factor: float = 1.,
                 out_indices: Sequence[int] = (1, 2, 4, 7),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 attention_cfg: Optional[dict] = None,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg=None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        super().__init__(init_cfg)
        num_stages = len(self.arch_settings)
        if not set(out_indices).issubset(range(num_stages)):
            raise ValueError(f'out_indices must be a subset of range(0, {num_stages}), '
                             f'got {out_indices}')
        if frozen_stages not in range(-1, num_stages + 1):
            raise ValueError(f'frozen_stages must be in range(-1, {num_stages + 1}), '
                             f'got {frozen_stages}')
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        in_channels = make_divisible(32 * widen_factor, 8)
        self.conv1 = ConvModule(3, in_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.layers = []
        self.out_channels = []
        for i, (expand_ratio, channels, num_blocks, stride) in enumerate(self.arch_settings):
            out_channels = make_divisible(channels * widen_factor, 8)
            blocks = []
            for j in range(num_blocks):
                name = f'layer{i + 1}.{j}'
                try:
                    blocks.append(SandglassBlock(
                        in_channels, out_channels, stride if j == 0 else 1, expand_ratio,
                        conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                        attention_cfg=attention_cfg, with_cp=with_cp))
                except ValueError as e:
                    raise ValueError(f'{type(self).__name__} block {name} '
                                     f'({out_channels} output channels): {e}') from e
                in_channels = out_channels
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            self.layers.append(f'layer{i + 1}')
            self.out_channels.append(out_channels)
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        frozen = ([self.conv1] if self.frozen_stages >= 0 else []) + \
            [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.conv1(x)
        outs = []
        for i, layer_name in enumerate(self.layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'MobileNeXt':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
