from .backbones import EANMobileNeXt, EANResNet, MobileNeXt
from .dense_heads import CompatSSDHead
from .layers import EAN, SE, CoordAttention

__all__ = ['EAN', 'SE', 'CoordAttention', 'EANResNet', 'MobileNeXt', 'EANMobileNeXt', 'CompatSSDHead']
