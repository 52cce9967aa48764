"""MobileNetV2 with an attention layer in the expansion stage of every inverted residual."""
from typing import Literal, Optional

import torch
import torch.nn as nn
from mmpretrain.models.backbones.mobilenet_v2 import InvertedResidual, MobileNetV2
from torch.utils import checkpoint as cp

from ...checkpoint.pretrained import PretrainedLoadingMixin
from ...registry import MODELS
from ..layers.attention import build_attention_layer, norm_and_attention
from ..layers.ean_groups import checks_ean_groups

__all__ = ['AttentionInvertedResidual', 'AttentionMobileNetV2', 'EANMobileNetV2']

AttentionAfter = Literal['expand', 'depthwise']


class AttentionInvertedResidual(InvertedResidual):
    """mmpretrain's ``InvertedResidual`` (``conv.0`` expand 1x1, ``conv.1`` depthwise 3x3,
    ``conv.2`` linear 1x1; no ``conv.0`` expansion when ``t == 1``) with an attention layer on
    the expanded features: after the norm of ``conv.0`` and before its ReLU6.

    EAN paper, Integration Strategy: "the EAN module is incorporated during the expansion stage
    to ensure attention focuses on the largest representation". The expansion convolution makes
    that representation; re-calibrating it right after its norm, before the non-linearity, is
    the placement used in the other backbones (after the norm of the re-calibrated convolution).
    With ``t == 1`` there is no expansion and ``conv.0`` is the depthwise convolution on the
    block's (widest) input. ``attention_after='depthwise'`` is the other reading: after the
    depthwise convolution's norm (the expanded features after spatial mixing and the stride).
    """

    def __init__(self, *args, attention_cfg: Optional[dict] = None,
                 attention_after: AttentionAfter = 'expand', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if attention_after not in ('expand', 'depthwise'):
            raise ValueError(f"attention_after must be 'expand' or 'depthwise', "
                             f'got {attention_after!r}')
        has_expand = len(self.conv) == 3
        self.attention_index = 1 if attention_after == 'depthwise' and has_expand else 0
        self.attention_name = None
        if attention_cfg is not None:
            self.attention_name, attention = build_attention_layer(
                attention_cfg, self.conv[self.attention_index].conv.out_channels)
            self.add_module(self.attention_name, attention)

    @property
    def attention_norm(self) -> str:
        """The norm layer the attention layer follows."""
        return f'conv.{self.attention_index}.{self.conv[self.attention_index].norm_name}'

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for i, layer in enumerate(self.conv):
            if i == self.attention_index and self.attention_name is not None:
                out = norm_and_attention(layer.norm, getattr(self, self.attention_name),
                                         layer.conv(out))
                if layer.with_activation:
                    out = layer.activate(out)
            else:
                out = layer(out)
        return x + out if self.use_res_connect else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


@MODELS.register_module()
class AttentionMobileNetV2(PretrainedLoadingMixin, MobileNetV2):
    """mmpretrain's ``MobileNetV2`` (all of its arguments, its keys ``conv1``,
    ``layerX.Y.conv.K``, ``conv2``) with ``attention_cfg`` in every inverted residual, placed as
    :class:`AttentionInvertedResidual` says. ``attention_cfg=None`` is mmpretrain's network.

    Keys are those of mmpretrain's ImageNet checkpoints; mmdet's ``MobileNetV2`` has the same
    network under other names (``expand_conv``, ``depthwise_conv``, ``linear_conv``).

    Args:
        attention_cfg: The layer; ``type`` resolves in the ``ean_mm`` scope first.
        attention_after: ``'expand'`` (default) or ``'depthwise'``.
        **kwargs: mmpretrain ``MobileNetV2`` arguments (``widen_factor``, ``out_indices``,
            ``frozen_stages``, ``norm_cfg``, ``act_cfg``, ``norm_eval``, ``with_cp``,
            ``init_cfg``); ``out_indices`` 0..7, 7 being ``conv2``.
    """

    @checks_ean_groups  # one hint that fits every EAN layer
    def __init__(self, attention_cfg: Optional[dict] = None,
                 attention_after: AttentionAfter = 'expand', **kwargs) -> None:
        self.attention_cfg = attention_cfg  # read by make_layer during super().__init__
        self.attention_after = attention_after
        super().__init__(**kwargs)

    def make_layer(self, out_channels: int, num_blocks: int, stride: int,
                   expand_ratio: int) -> nn.Sequential:
        blocks = []
        for i in range(num_blocks):
            name = f'layer{len(self.layers) + 1}.{i}'
            try:
                blocks.append(AttentionInvertedResidual(
                    self.in_channels, out_channels, stride if i == 0 else 1,
                    expand_ratio=expand_ratio, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg, with_cp=self.with_cp,
                    attention_cfg=self.attention_cfg, attention_after=self.attention_after))
            except ValueError as err:
                raise ValueError(f'{type(self).__name__} block {name}: {err}') from err
            self.in_channels = out_channels
        return nn.Sequential(*blocks)

    def train(self, mode: bool = True) -> 'AttentionMobileNetV2':
        super().train(mode)  # mmpretrain's returns None; nn.Module's contract wants self
        return self


@MODELS.register_module()
class EANMobileNetV2(AttentionMobileNetV2):
    """:class:`AttentionMobileNetV2` with ``attention_cfg=dict(type='EAN', groups=ean_groups,
    **ean_cfg)`` (EAN paper Table 3: EAN-MV2, 3.50M, G = 8). Keys
    ``layerX.Y.ean.{gn.weight, gn.bias, alpha, delta}``."""

    def __init__(self, ean_groups: int = 8, ean_cfg: Optional[dict] = None, **kwargs) -> None:
        if 'attention_cfg' in kwargs:
            raise TypeError(f'{type(self).__name__} sets attention_cfg itself; use '
                            'ean_mm.AttentionMobileNetV2 for another attention layer.')
        self.ean_groups = ean_groups
        super().__init__(attention_cfg=dict(type='EAN', groups=ean_groups, **(ean_cfg or {})),
                         **kwargs)
