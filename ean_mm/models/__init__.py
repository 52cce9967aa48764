from .backbones import (AttentionBasicBlock, AttentionResNet, EANMobileNeXt, EANResNet,
                        MobileNeXt, SandglassBlock)
from .dense_heads import CompatSSDHead
from .layers import (EAN, SE, CoordAttention, build_attention_layer, resolve_attention_cfg,
                     set_ean_implementation)

__all__ = [
    'EAN', 'SE', 'CoordAttention', 'build_attention_layer', 'resolve_attention_cfg',
    'set_ean_implementation',
    'AttentionResNet', 'AttentionBasicBlock', 'EANResNet', 'MobileNeXt', 'SandglassBlock',
    'EANMobileNeXt', 'CompatSSDHead'
]
