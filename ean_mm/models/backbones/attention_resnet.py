"""ResNet with an attention layer in every residual block (EAN paper: Integration Strategy)."""
from typing import List, Optional

from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from torch.utils import checkpoint as cp

from ...checkpoint.pretrained import PretrainedLoadingMixin
from ...registry import MODELS
from ..layers.attention import (add_identity, build_attention_layer, norm_and_attention,
                                resolve_attention_cfg)
from ..layers.ean_groups import checks_ean_groups


class AttentionBasicBlock(BasicBlock):
    """mmdet's ``BasicBlock`` with an attention layer after ``conv2 -> norm2``, before the add.

    mmdet's ``BasicBlock`` takes no plugins; the layer is named as a plugin would be
    (``layerX.Y.ean``), so keys match the Bottleneck plugin's.
    """

    def __init__(self, *args, attention_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.attention_name = None
        if attention_cfg is not None:
            self.attention_name, attention = build_attention_layer(
                attention_cfg, self.conv2.out_channels)
            self.add_module(self.attention_name, attention)

    @property
    def attention_norm(self) -> str:
        """The norm layer the attention layer follows."""
        return self.norm2_name

    def forward(self, x):

        def _inner_forward(x):
            identity = x
            out = self.relu(self.norm1(self.conv1(x)))
            if self.attention_name is not None:
                last = getattr(self, self.attention_name)
                out = norm_and_attention(self.norm2, last, self.conv2(out))
            else:
                last = self.norm2
                out = last(self.conv2(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            return add_identity(out, identity, last)

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


class AttentionBottleneck(Bottleneck):
    """mmdet's ``Bottleneck`` (same modules, keys and outputs) whose first ``after_conv3``
    plugin runs through :func:`~ean_mm.models.layers.norm_and_attention` with ``norm3``, so that
    EAN after ``bn3`` keeps only the conv3 output for backward."""

    def forward(self, x):

        def _inner_forward(x):
            identity = x
            out = self.relu(self.norm1(self.conv1(x)))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv1_plugin_names)
            out = self.relu(self.norm2(self.conv2(out)))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv2_plugin_names)
            out = self.conv3(out)
            names = self.after_conv3_plugin_names if self.with_plugins else []
            if names:
                out = norm_and_attention(self.norm3, getattr(self, names[0]), out)
                out = self.forward_plugin(out, names[1:])
                last = getattr(self, names[-1])
            else:
                last = self.norm3
                out = last(out)
            if self.downsample is not None:
                identity = self.downsample(x)
            return add_identity(out, identity, last)

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


@MODELS.register_module()
class AttentionResNet(PretrainedLoadingMixin, ResNet):
    """mmdet's ``ResNet`` (all of its arguments) with ``attention_cfg`` in every residual block.

    The layer re-calibrates the output of the block's last convolution after its norm and before
    the residual add: an mmcv plugin at ``after_conv3`` in Bottlenecks (depth 50/101/152, keys
    ``layerX.Y.<abbr>.*``, the same model as stock ``ResNet`` with that plugin), after ``norm2``
    in :class:`AttentionBasicBlock` (depth 18/34). ``attention_cfg=None`` is stock ``ResNet``.
    ``type`` names resolve in the ``ean_mm`` scope first (``'EAN'``, ``'SE'``, ``'CA'``).
    """

    arch_settings = {
        18: (AttentionBasicBlock, (2, 2, 2, 2)),
        34: (AttentionBasicBlock, (3, 4, 6, 3)),
        50: (AttentionBottleneck, (3, 4, 6, 3)),
        101: (AttentionBottleneck, (3, 4, 23, 3)),
        152: (AttentionBottleneck, (3, 8, 36, 3)),
    }

    @checks_ean_groups  # one hint that fits every EAN layer
    def __init__(self,
                 depth: int,
                 attention_cfg: Optional[dict] = None,
                 plugins: Optional[List[dict]] = None,
                 **kwargs) -> None:
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for {type(self).__name__}; choose one of '
                           f'{sorted(self.arch_settings)}')
        self.attention_cfg = attention_cfg
        block = self.arch_settings[depth][0]
        if attention_cfg is not None and block is AttentionBottleneck:
            plugins = list(plugins or []) + [
                dict(cfg=resolve_attention_cfg(attention_cfg), position='after_conv3')]
        super().__init__(depth, plugins=plugins, **kwargs)
        if self.zero_init_residual and kwargs.get('init_cfg') is None and \
                kwargs.get('pretrained') is None:
            # mmdet zero-inits the last norm only of blocks that *are* its own block classes.
            last_norm = 'norm2' if block is AttentionBasicBlock else 'norm3'
            for layer_name in self.res_layers:
                for res_block in getattr(self, layer_name):
                    res_block.init_cfg = dict(type='Constant', val=0,
                                              override=dict(name=last_norm))

    def make_res_layer(self, **kwargs):
        if kwargs['block'] is AttentionBasicBlock:
            kwargs['attention_cfg'] = self.attention_cfg
        stage = f'layer{len(self.res_layers) + 1}'
        try:
            return super().make_res_layer(**kwargs)
        except ValueError as err:
            channels = kwargs['planes'] * kwargs['block'].expansion
            raise ValueError(f'{type(self).__name__} stage {stage} ({channels} output '
                             f'channels): {err}') from err

    def train(self, mode: bool = True) -> 'AttentionResNet':
        # mmdet's ResNet.train returns None; nn.Module's contract wants self.
        super().train(mode)
        return self
