# SSDLite320 with SE-MobileNeXt (SE, r=16, after the last convolution of every sandglass block)
# on COCO 2017: the SE baseline of the EAN paper (Table 5: 4.7M, mAP 22.6). Same training as
# ssdlite320_mobilenext_coco.py and ssdlite320_ean_mobilenext_coco.py; only the backbone differs.
_base_ = './ssdlite320_mobilenext_coco.py'

model = dict(
    backbone=dict(
        attention_cfg=dict(type='ean_mm.SE', reduction=16),
        init_cfg=dict(checkpoint='checkpoints/se_mobilenext_in1k.pth')))
