# SSDLite320 with CA-MobileNeXt (Coordinate Attention, r=32, >= 8 channels, after the last
# convolution of every sandglass block) on COCO 2017: the CA baseline of the EAN paper
# (Table 5: 4.8M, mAP 23.0). Same training as ssdlite320_mobilenext_coco.py and
# ssdlite320_ean_mobilenext_coco.py; only the backbone differs.
_base_ = './ssdlite320_mobilenext_coco.py'

model = dict(
    backbone=dict(
        attention_cfg=dict(type='ean_mm.CoordAttention', reduction=32, min_channels=8),
        init_cfg=dict(checkpoint='checkpoints/ca_mobilenext_in1k.pth')))
