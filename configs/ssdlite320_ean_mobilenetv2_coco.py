# SSDLite320 with EAN-MobileNetV2 (G = 8, EAN in the expansion stage of every inverted residual):
# the stock recipe of its twin ssdlite320_mobilenetv2_coco.py with only the backbone changed.
# EANMobileNetV2 has mmpretrain's MobileNetV2 key names (mmdet's MobileNetV2 is the same network
# under other names); out_indices, norms and init are the twin's.
_base_ = './ssdlite320_mobilenetv2_coco.py'

model = dict(backbone=dict(type='ean_mm.EANMobileNetV2', ean_groups=8))
