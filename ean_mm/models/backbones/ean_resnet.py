"""ResNet with EAN in the last layer of every residual block (paper: Integration Strategy)."""
import copy
from typing import List, Optional

from mmcv.cnn import build_plugin_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmengine.registry import MODELS

from .pretrained import PretrainedReportMixin


class EANBasicBlock(BasicBlock):
    """mmdet's ``BasicBlock`` with an attention layer after ``conv2 -> norm2``, before the add.

    mmdet's ``BasicBlock`` takes no plugins, so ResNet-18/34 use this block. The attention layer
    is named like an mmcv plugin (``layerX.Y.ean``), so checkpoints look the same as the
    bottleneck plugin's.
    """

    def __init__(self, *args, attention_cfg: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        planes = self.conv2.out_channels
        cfg = copy.deepcopy(attention_cfg)
        self.attention_name, attention = build_plugin_layer(
            cfg, in_channels=planes, postfix=cfg.pop('postfix', ''))
        self.add_module(self.attention_name, attention)

    def forward(self, x):
        # Same as BasicBlock.forward with the attention applied before the residual add.
        def _inner_forward(x):
            identity = x
            out = self.relu(self.norm1(self.conv1(x)))
            out = self.norm2(self.conv2(out))
            out = getattr(self, self.attention_name)(out)
            if self.downsample is not None:
                identity = self.downsample(x)
            return out + identity

        if self.with_cp and x.requires_grad:
            from torch.utils import checkpoint as cp
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


@MODELS.register_module()
class EANResNet(PretrainedReportMixin, ResNet):
    """ResNet (mmdet's, all of its arguments) with EAN in the last layer of every residual block.

    Following the paper's Integration Strategy, EAN re-calibrates the output of the block's last
    convolution after its normalization and before the residual addition:

    * Bottleneck (depth 50/101/152): EAN is an mmcv plugin at ``position='after_conv3'``, so this
      backbone is exactly stock ``ResNet`` with
      ``plugins=[dict(cfg=dict(type='EAN', groups=ean_groups), position='after_conv3')]`` - same
      modules, same state-dict keys (``layerX.Y.ean.{gn.weight,gn.bias,alpha,delta}``), and either
      config loads the other's checkpoints.
    * BasicBlock (depth 18/34): stock mmdet ``BasicBlock`` takes no plugins, so
      :class:`EANBasicBlock` places EAN after ``norm2``, under the same key names.

    Args:
        depth: ResNet depth, one of 18, 34, 50, 101, 152.
        ean_groups: EAN group count ``G`` (paper: 64 for larger models). Must divide every
            stage's output channels.
        ean_cfg: Further EAN arguments, e.g. ``dict(l2_reduction='mean')``. ``type`` may name
            another registered attention layer taking ``in_channels``.
        **kwargs: Everything :class:`mmdet.models.ResNet` accepts (``out_indices``,
            ``frozen_stages``, ``norm_eval``, ``style``, ``with_cp``, ``plugins``, ``init_cfg``...).
            A ``Pretrained`` ``init_cfg`` reports missing / unexpected keys and accepts
            ``strict=True`` (see :mod:`ean_mm.models.backbones.pretrained`).
    """

    arch_settings = {
        18: (EANBasicBlock, (2, 2, 2, 2)),
        34: (EANBasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int,
                 ean_groups: int = 64,
                 ean_cfg: Optional[dict] = None,
                 plugins: Optional[List[dict]] = None,
                 **kwargs) -> None:
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for EANResNet; choose one of '
                           f'{sorted(self.arch_settings)}')
        self.ean_groups = ean_groups
        self.attention_cfg = dict(type='EAN', groups=ean_groups, **(ean_cfg or {}))
        block = self.arch_settings[depth][0]
        self._check_groups(block, kwargs.get('base_channels', 64),
                           kwargs.get('num_stages', 4))
        if block is Bottleneck:
            plugins = list(plugins or []) + [
                dict(cfg=self.attention_cfg, position='after_conv3')]
        super().__init__(depth, plugins=plugins, **kwargs)
        if block is EANBasicBlock and self.zero_init_residual and \
                kwargs.get('init_cfg') is None and kwargs.get('pretrained') is None:
            # mmdet zero-inits the last norm only for blocks that *are* BasicBlock/Bottleneck.
            for layer_name in self.res_layers:
                for res_block in getattr(self, layer_name):
                    res_block.init_cfg = dict(type='Constant', val=0, override=dict(name='norm2'))

    def make_res_layer(self, **kwargs):
        if kwargs['block'] is EANBasicBlock:
            kwargs['attention_cfg'] = self.attention_cfg
        return super().make_res_layer(**kwargs)

    def _check_groups(self, block: type, base_channels: int, num_stages: int) -> None:
        groups = self.ean_groups
        for i in range(num_stages):
            channels = base_channels * 2**i * block.expansion
            if not isinstance(groups, int) or groups < 1 or channels % groups:
                raise ValueError(
                    f'EANResNet: ean_groups={groups} does not divide the {channels} output '
                    f'channels of stage layer{i + 1}; use a power of two that divides '
                    f'{base_channels * block.expansion} (the paper uses 64).')

    def train(self, mode: bool = True) -> 'EANResNet':
        # mmdet's ResNet.train returns None; nn.Module's contract (and ``net.eval()(x)``) wants self.
        super().train(mode)
        return self
