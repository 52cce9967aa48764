from .attention_resnet import AttentionBasicBlock, AttentionResNet
from .ean_mobilenext import EANMobileNeXt
from .ean_resnet import EANResNet
from .mobilenext import MobileNeXt, SandglassBlock

__all__ = ['AttentionResNet', 'AttentionBasicBlock', 'EANResNet', 'MobileNeXt',
           'SandglassBlock', 'EANMobileNeXt']
