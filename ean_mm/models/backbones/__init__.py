from .ean_mobilenext import EANMobileNeXt
from .ean_resnet import EANResNet
from .mobilenext import MobileNeXt

__all__ = ['EANResNet', 'MobileNeXt', 'EANMobileNeXt']
