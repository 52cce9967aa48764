from .backbones import (AttentionBasicBlock, AttentionCSPNeXt, AttentionCSPNeXtBlock,
                        EANCSPNeXt, AttentionInvertedResidual, AttentionMobileNetV2,
                        AttentionResNet, EANMobileNetV2, EANMobileNeXt, EANResNet, MobileNeXt,
                        SandglassBlock)
from .dense_heads import CompatSSDHead
from .heads import DropoutLinearClsHead
from .layers import (EAN, SE, CoordAttention, build_attention_layer, ean_export_form,
                     resolve_attention_cfg, set_ean_implementation)

__all__ = [
    'EAN', 'SE', 'CoordAttention', 'build_attention_layer', 'resolve_attention_cfg',
    'set_ean_implementation', 'ean_export_form',
    'AttentionResNet', 'AttentionBasicBlock', 'EANResNet', 'MobileNeXt', 'SandglassBlock',
    'EANMobileNeXt', 'AttentionMobileNetV2', 'AttentionInvertedResidual', 'EANMobileNetV2',
    'AttentionCSPNeXt', 'AttentionCSPNeXtBlock', 'EANCSPNeXt', 'CompatSSDHead',
    'DropoutLinearClsHead'
]
