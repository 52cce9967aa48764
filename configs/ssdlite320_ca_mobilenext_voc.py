# SSDLite320 with CA-MobileNeXt (r=32, >= 8 channels) on PASCAL VOC (paper Table 4: 4.9M,
# mAP 72.9 on VOC2012 val). Same training as ssdlite320_mobilenext_voc.py and
# ssdlite320_ean_mobilenext_voc.py.
_base_ = './ssdlite320_mobilenext_voc.py'

model = dict(
    backbone=dict(
        attention_cfg=dict(type='ean_mm.CoordAttention', reduction=32, min_channels=8),
        init_cfg=dict(checkpoint='checkpoints/ca_mobilenext_in1k.pth')))
