from .backbones import EANMobileNeXt, EANResNet, MobileNeXt
from .layers import EAN

__all__ = ['EAN', 'EANResNet', 'MobileNeXt', 'EANMobileNeXt']
