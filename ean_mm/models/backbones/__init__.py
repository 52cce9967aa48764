from .attention_cspnext import AttentionCSPNeXt, AttentionCSPNeXtBlock, EANCSPNeXt
from .attention_mobilenet_v2 import (AttentionInvertedResidual, AttentionMobileNetV2,
                                     EANMobileNetV2)
from .attention_resnet import AttentionBasicBlock, AttentionResNet
from .ean_mobilenext import EANMobileNeXt
from .ean_resnet import EANResNet
from .mobilenext import MobileNeXt, SandglassBlock

__all__ = ['AttentionResNet', 'AttentionBasicBlock', 'EANResNet', 'MobileNeXt',
           'SandglassBlock', 'EANMobileNeXt', 'AttentionMobileNetV2', 'AttentionInvertedResidual',
           'EANMobileNetV2', 'AttentionCSPNeXt', 'AttentionCSPNeXtBlock', 'EANCSPNeXt']
