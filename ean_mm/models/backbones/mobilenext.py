"""MobileNeXt: the sandglass network of Zhou et al., ECCV 2020, as its authors' code builds it."""
import math
from typing import List, Literal, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from mmdet.models.utils import make_divisible
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils import checkpoint as cp

from ...checkpoint.pretrained import PretrainedLoadingMixin
from ...registry import MODELS
from ..layers.attention import build_attention_layer, norm_and_attention
from ..layers.ean_groups import checks_ean_groups

__all__ = ['SandglassBlock', 'MobileNeXt', 'sandglass_mid_channels']


def sandglass_mid_channels(in_channels: int, out_channels: int, expand_ratio: int) -> int:
    """The reduced width of a sandglass block: ``in // t``, or, where that is below ``out / 6``,
    ``ceil(out / 6)`` rounded to a multiple of 16 (the authors' code)."""
    mid = in_channels // expand_ratio
    if mid < out_channels / 6:
        mid = make_divisible(math.ceil(out_channels / 6), 16)
    return mid


class SandglassBlock(BaseModule):
    """Sandglass block in the four forms of the authors' code (BN after every convolution).

    =========================================  =====================================  ========
    condition                                  layers (``conv.0``, ``conv.1``, ...)    shortcut
    =========================================  =====================================  ========
    ``t == 2``                                 dw3x3+act, pw, pw+act, dw3x3(stride)   no
    in != out, stride 1, not a one-block stage pw, pw+act                             no
    in != out, stride 2                        pw, pw+act, dw3x3(stride)              no
    otherwise                                  dw3x3+act, pw, pw+act, dw3x3           in == out
    =========================================  =====================================  ========

    "Otherwise" includes the only block of a one-block stride-1 stage (144 and 1280 channels),
    whose input is narrower than its output: it keeps both depthwise convolutions and has no
    shortcut. ``dw`` is depthwise, ``pw`` pointwise; the first ``pw`` reduces to
    :func:`sandglass_mid_channels`, the second expands to ``out_channels``.

    The attention layer (EAN paper: "plugged into the last convolutional layer of each block")
    sits after the norm of the block's last convolution, before that convolution's activation
    where it has one, and before the shortcut add:

    * dw-pw-pw-dw forms (``t == 2`` and "otherwise"): after the last dw3x3's BN, before the add;
    * pw-pw form: after the second pw's BN, before its ReLU6;
    * pw-pw-dw form: after the strided dw3x3's BN.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 expand_ratio: int,
                 one_block_stage: bool = False,
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
        keep_dw = expand_ratio == 2 or in_channels == out_channels or \
            (one_block_stage and stride == 1)
        self.leading_dw = keep_dw
        self.trailing_dw = keep_dw or stride == 2
        mid_channels = sandglass_mid_channels(in_channels, out_channels, expand_ratio)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        layers = []
        if self.leading_dw:
            layers.append(ConvModule(in_channels, in_channels, 3, padding=1, groups=in_channels,
                                     act_cfg=act_cfg, **common))
        layers.append(ConvModule(in_channels, mid_channels, 1, act_cfg=None, **common))
        # The last convolution's activation (pw-pw form) runs after the attention layer.
        layers.append(ConvModule(mid_channels, out_channels, 1,
                                 act_cfg=act_cfg if self.trailing_dw else None, **common))
        if self.trailing_dw:
            layers.append(ConvModule(out_channels, out_channels, 3, stride=stride, padding=1,
                                     groups=out_channels, act_cfg=None, **common))
        self.conv = nn.Sequential(*layers)
        self.last_act = None if self.trailing_dw else build_activation_layer(act_cfg)
        self.attention_name = None
        if attention_cfg is not None:
            self.attention_name, attention = build_attention_layer(attention_cfg, out_channels)
            self.add_module(self.attention_name, attention)

    @property
    def attention_norm(self) -> str:
        """The norm layer the attention layer follows (``conv.<last>.bn``)."""
        return f'conv.{len(self.conv) - 1}.{self.conv[-1].norm_name}'

    def _inner_forward(self, x: torch.Tensor, with_tap: bool):
        out = self.conv[:-1](x)
        tap = out
        last = self.conv[-1]
        if self.attention_name is None:
            out = last(out)
        else:  # the last conv's norm, then the attention, then its activation (if any)
            out = norm_and_attention(last.norm, getattr(self, self.attention_name),
                                     last.conv(out))
            if last.with_activation:
                out = last.activate(out)
        if self.last_act is not None:
            out = self.last_act(out)
        if self.use_shortcut:
            out = x + out
        return (out, tap) if with_tap else out

    def _run(self, x: torch.Tensor, with_tap: bool):
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, with_tap, use_reentrant=False)
        return self._inner_forward(x, with_tap)

    def forward_with_tap(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(output, tap)``: ``tap`` is the input of the block's final depthwise convolution
        (the authors' SSDLite features)."""
        if not self.trailing_dw:
            raise ValueError('this sandglass block (pw-pw form) has no final depthwise '
                             'convolution to tap before')
        return self._run(x, with_tap=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, with_tap=False)


@MODELS.register_module()
class MobileNeXt(PretrainedLoadingMixin, BaseModule):
    """MobileNeXt backbone (Zhou et al., "Rethinking Bottleneck Structure for Efficient Mobile
    Network Design", ECCV 2020) as built by the authors' released code, with arguments in the
    manner of mmdet's ``MobileNetV2``.

    Stem: conv3x3, 32 channels, stride 2. Then eight stages ``layer1..layer8`` of
    :class:`SandglassBlock`, ``(t, c, n, s)`` = (2, 96, 1, 2), (6, 144, 1, 1), (6, 192, 3, 2),
    (6, 288, 3, 2), (6, 384, 4, 1), (6, 576, 4, 2), (6, 960, 3, 1), (6, 1280, 1, 1); channels
    ``make_divisible(c * widen_factor, 8)``, the last stage kept at 1280 for ``widen_factor < 1``.
    Output strides: 4, 4, 8, 16, 16, 32, 32, 32. The 1.0x ImageNet classifier (GAP, dropout 0.2,
    linear 1280 -> 1000) has 3,535,416 parameters (EAN paper Table 3: 3.54M).

    Args:
        widen_factor: Width multiplier.
        out_indices: Stages (0..7) whose features are returned.
        out_tap: ``'stage'``: each stage's output. ``'pre_dw'``: for each stage in
            ``out_indices``, its first block's features before that block's final depthwise
            convolution, as the authors' SSDLite takes them: ``out_indices=(5, 7)`` gives 576
            channels at stride 16 and 1280 at stride 32.
        frozen_stages: -1 freezes nothing; 0 the stem; k the stem and ``layer1..layerk``.
        conv_cfg, norm_cfg, act_cfg: Layer configs (BN and ReLU6 by default).
        attention_cfg: An attention layer in every block, where :class:`SandglassBlock` says,
            e.g. ``dict(type='EAN', groups=8)``; ``type`` resolves in the ``ean_mm`` scope first.
        norm_eval: Keep BN layers in eval mode during training (frozen running stats).
        with_cp: Gradient checkpointing of each block.
        init_cfg: Kaiming convs and unit norms by default; ``Pretrained`` as in
            :class:`~ean_mm.checkpoint.PretrainedLoadingMixin`.
    """

    arch_settings = [[2, 96, 1, 2], [6, 144, 1, 1], [6, 192, 3, 2], [6, 288, 3, 2],
                     [6, 384, 4, 1], [6, 576, 4, 2], [6, 960, 3, 1], [6, 1280, 1, 1]]

    @checks_ean_groups  # one hint that fits every EAN layer
    def __init__(self,
                 widen_factor: float = 1.,
                 out_indices: Sequence[int] = (1, 2, 4, 7),
                 out_tap: Literal['stage', 'pre_dw'] = 'stage',
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
        if out_tap not in ('stage', 'pre_dw'):
            raise ValueError(f"out_tap must be 'stage' or 'pre_dw', got {out_tap!r}")
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.out_tap = out_tap
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        in_channels = make_divisible(32 * widen_factor, 8)
        self.conv1 = ConvModule(3, in_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.layers: List[str] = []
        self.out_channels: List[int] = []  # of every stage's output
        for i, (expand_ratio, channels, num_blocks, stride) in enumerate(self.arch_settings):
            out_channels = self.stage_channels(channels, widen_factor)
            blocks = []
            for j in range(num_blocks):
                name = f'layer{i + 1}.{j}'
                try:
                    blocks.append(SandglassBlock(
                        in_channels, out_channels, stride if j == 0 else 1, expand_ratio,
                        one_block_stage=num_blocks == 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                        act_cfg=act_cfg, attention_cfg=attention_cfg, with_cp=with_cp))
                except ValueError as e:
                    raise ValueError(f'{type(self).__name__} block {name} '
                                     f'({out_channels} output channels): {e}') from e
                in_channels = out_channels
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            self.layers.append(f'layer{i + 1}')
            self.out_channels.append(out_channels)
        if out_tap == 'pre_dw':
            tappable = [i for i, name in enumerate(self.layers)
                        if getattr(self, name)[0].trailing_dw]
            if not set(self.out_indices).issubset(tappable):
                raise ValueError(f"out_tap='pre_dw' needs out_indices whose stage starts with a "
                                 f'block ending in a depthwise convolution: {tappable}; got '
                                 f'{self.out_indices}')
        self._freeze_stages()

    @staticmethod
    def stage_channels(channels: int, widen_factor: float) -> int:
        """A stage's width: ``make_divisible(c * widen_factor, 8)``; 1280 stays for < 1."""
        if channels == 1280 and widen_factor < 1:
            return 1280
        return make_divisible(channels * widen_factor, 8)

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
            stage = getattr(self, layer_name)
            if i in self.out_indices and self.out_tap == 'pre_dw':
                x, tap = stage[0].forward_with_tap(x)
                x = stage[1:](x)
                outs.append(tap)
                continue
            x = stage(x)
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
