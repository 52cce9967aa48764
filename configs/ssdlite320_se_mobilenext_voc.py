# SSDLite320 with SE-MobileNeXt (r=16) on PASCAL VOC (paper Table 4: 4.8M, mAP 72.4 on VOC2012
# val). Same training as ssdlite320_mobilenext_voc.py and ssdlite320_ean_mobilenext_voc.py.
_base_ = './ssdlite320_mobilenext_voc.py'

model = dict(
    backbone=dict(
        attention_cfg=dict(type='ean_mm.SE', reduction=16),
        init_cfg=dict(checkpoint='checkpoints/se_mobilenext_in1k.pth')))
