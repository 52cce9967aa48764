"""CSPNeXt (RTMDet's backbone) with an attention layer in every ``CSPNeXtBlock``.

mmdet's modules (installed mmdet 3.3.0, ``mmdet/models/backbones/cspnext.py`` and
``mmdet/models/layers/csp_layer.py``): ``CSPNeXt`` builds each stage as ``[conv,
(SPPBottleneck), CSPLayer]``; ``CSPLayer`` runs
``main_conv -> blocks`` beside ``short_conv``, concatenates them, applies RTMDet's
``ChannelAttention`` (``mmdet/models/layers/se_layer.py``: global average pool, 1x1 conv,
hard sigmoid; ``channel_attention=True`` in every RTMDet config) and ``final_conv``. A
``CSPNeXtBlock`` is ``conv1`` (3x3 ConvModule) -> ``conv2`` (``DepthwiseSeparableConvModule``:
5x5 depthwise, then 1x1 ``pointwise_conv``), each conv -> norm -> act, plus the identity.
"""
import inspect
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import DepthwiseSeparableConvModule
from mmdet.models.backbones.cspnext import CSPNeXt
from mmdet.models.layers.csp_layer import CSPLayer, CSPNeXtBlock

from ...checkpoint.pretrained import PretrainedLoadingMixin
from ...registry import MODELS
from ..layers.attention import build_attention_layer, norm_and_attention
from ..layers.ean_groups import checks_ean_groups

__all__ = ['AttentionCSPNeXtBlock', 'AttentionCSPNeXt', 'EANCSPNeXt']

_CSPNEXT_DEFAULTS = {name: p.default
                     for name, p in inspect.signature(CSPNeXt.__init__).parameters.items()}


class AttentionCSPNeXtBlock(CSPNeXtBlock):
    """mmdet's ``CSPNeXtBlock`` (same modules and keys) with an attention layer on the output of
    its last convolution, ``conv2.pointwise_conv``: after that conv's norm, before its
    activation and before the identity add, ``out = act(att(norm(pw(dw(conv1(x)))))) + x``.

    EAN paper, Integration Strategy: the layer re-calibrates the output of a residual block's
    last convolution after its norm, before the residual add (ResNet: after ``bn3``). A
    CSPNeXt block activates each convolution before the add, so the layer sits between the
    pointwise conv's norm and its activation, as in ean_mm's MobileNetV2 (after the norm, before
    the non-linearity). Keys ``conv1.*``, ``conv2.*`` as mmdet's, plus ``<abbr>.*`` (``ean``).
    """

    def __init__(self, *args, attention_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        pointwise = self.conv2.pointwise_conv
        if tuple(pointwise.order) != ('conv', 'norm', 'act') or not pointwise.with_norm:
            raise ValueError(f'{type(self).__name__}: the attention layer goes after the norm of '
                             "conv2.pointwise_conv, which needs order ('conv', 'norm', 'act') "
                             f'and a norm; got order {pointwise.order}, norm_cfg '
                             f'{pointwise.norm_cfg}')
        self.attention_name = None
        if attention_cfg is not None:
            self.attention_name, attention = build_attention_layer(attention_cfg,
                                                                   pointwise.conv.out_channels)
            self.add_module(self.attention_name, attention)

    @property
    def attention_norm(self) -> str:
        """The norm layer the attention layer follows (read by the plain start)."""
        return f'conv2.pointwise_conv.{self.conv2.pointwise_conv.norm_name}'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.attention_name is None:
            return super().forward(x)
        out = self.conv2.depthwise_conv(self.conv1(x))
        pointwise = self.conv2.pointwise_conv
        out = norm_and_attention(pointwise.norm, getattr(self, self.attention_name),
                                 pointwise.conv(out))
        if pointwise.with_activation:
            out = pointwise.activate(out)
        return out + x if self.add_identity else out


@MODELS.register_module()
class AttentionCSPNeXt(PretrainedLoadingMixin, CSPNeXt):
    """mmdet's ``CSPNeXt`` (all of its arguments, its keys ``stem.*``, ``stageN.*``) with
    ``attention_cfg`` in every ``CSPNeXtBlock``, placed as :class:`AttentionCSPNeXtBlock` says.
    ``attention_cfg=None`` is mmdet's network.

    RTMDet's own channel attention (``stageN.K.attention``, one per ``CSPLayer`` on the
    concatenated ``2 * mid`` channels before ``final_conv``, when ``channel_attention=True``)
    is kept, so the network is stock ``CSPNeXt`` plus the block layers, and a plain CSPNeXt
    checkpoint (RTMDet's ImageNet ones, ``backbone.*``) starts it exactly as the plain network
    (:mod:`ean_mm.checkpoint.plain_start`). ``replace_channel_attention=True`` puts an
    ``attention_cfg`` layer in its place instead (keys ``stageN.K.attention.*`` of that layer);
    its input is a concatenation, not a norm's output, so no plain checkpoint starts that
    network exactly and the plain start refuses it.

    Args:
        attention_cfg: The layer; ``type`` resolves in the ``ean_mm`` scope first.
        replace_channel_attention: Replace each ``CSPLayer``'s ``ChannelAttention`` with an
            ``attention_cfg`` layer (needs ``channel_attention=True``).
        **kwargs: mmdet ``CSPNeXt`` arguments (``arch``, ``deepen_factor``, ``widen_factor``,
            ``out_indices``, ``frozen_stages``, ``use_depthwise``, ``expand_ratio``,
            ``arch_ovewrite``, ``spp_kernel_sizes``, ``channel_attention``, ``conv_cfg``,
            ``norm_cfg``, ``act_cfg``, ``norm_eval``, ``init_cfg``).
    """

    @checks_ean_groups  # one hint that fits every EAN layer
    def __init__(self, attention_cfg: Optional[dict] = None,
                 replace_channel_attention: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attention_cfg = attention_cfg
        self.replace_channel_attention = replace_channel_attention
        if replace_channel_attention and attention_cfg is None:
            raise ValueError(f'{type(self).__name__}: replace_channel_attention=True needs an '
                             'attention_cfg (the layer to put in place of ChannelAttention)')
        if replace_channel_attention and not kwargs.get(
                'channel_attention', _CSPNEXT_DEFAULTS['channel_attention']):
            raise ValueError(f'{type(self).__name__}: replace_channel_attention=True replaces '
                             'the ChannelAttention of channel_attention=True; with '
                             'channel_attention=False there is none to replace')
        if attention_cfg is None:
            return
        block_args = {k: kwargs.get(k, _CSPNEXT_DEFAULTS[k])
                      for k in ('conv_cfg', 'norm_cfg', 'act_cfg')}
        for stage in self.layers[1:]:
            csp = getattr(self, stage)[-1]
            assert isinstance(csp, CSPLayer), type(csp)
            for i, block in enumerate(csp.blocks):
                channels = block.conv2.pointwise_conv.conv.out_channels
                try:
                    # CSPNeXt's CSPLayer makes mid -> mid blocks, expansion 1.0
                    csp.blocks[i] = AttentionCSPNeXtBlock(
                        channels, channels, 1.0, block.add_identity,
                        isinstance(block.conv1, DepthwiseSeparableConvModule),
                        kernel_size=block.conv2.depthwise_conv.conv.kernel_size[0],
                        attention_cfg=attention_cfg, **block_args)
                except ValueError as err:
                    where = f'{stage}.{len(getattr(self, stage)) - 1}.blocks.{i}'
                    raise ValueError(f'{type(self).__name__} block {where}: {err}') from err
            if replace_channel_attention:
                _, csp.attention = build_attention_layer(attention_cfg,
                                                         csp.final_conv.conv.in_channels)

    def train(self, mode: bool = True) -> 'AttentionCSPNeXt':
        super().train(mode)  # mmdet's returns None; nn.Module's contract wants self
        return self


@MODELS.register_module()
class EANCSPNeXt(AttentionCSPNeXt):
    """:class:`AttentionCSPNeXt` with ``attention_cfg=dict(type='EAN', groups=ean_groups,
    **ean_cfg)``. Keys ``stageN.K.blocks.J.ean.{gn.weight, gn.bias, alpha, delta}``, ``C/G``
    values each: ``4 C / G`` parameters per block.

    ``G = 8``: the paper's value for lightweight models (MobileNeXt, MobileNetV2; 64 for
    ResNet). It divides the block widths of every RTMDet size: ``CSPNeXtBlock`` s have
    ``expand_ratio * widen_factor * (128, 256, 512, 1024)`` channels, 32-256 for RTMDet-s
    (``widen_factor=0.5``), 24-192 for tiny (0.375), up to 80-640 for x (1.25); ``G = 64``
    would not divide RTMDet-s's first stage (32).

    Args:
        ean_groups: ``G``; must divide every block's channels.
        ean_cfg: Further :class:`~ean_mm.models.EAN` arguments, e.g. ``omega='l2_mean'``.
        **kwargs: :class:`AttentionCSPNeXt`'s (mmdet ``CSPNeXt``'s) arguments.
    """

    def __init__(self, ean_groups: int = 8, ean_cfg: Optional[dict] = None, **kwargs) -> None:
        if 'attention_cfg' in kwargs:
            raise TypeError(f'{type(self).__name__} sets attention_cfg itself; use '
                            'ean_mm.AttentionCSPNeXt for another attention layer.')
        self.ean_groups = ean_groups
        super().__init__(attention_cfg=dict(type='EAN', groups=ean_groups, **(ean_cfg or {})),
                         **kwargs)
