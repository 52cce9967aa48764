# SSDLite320 with EAN-MobileNeXt on COCO 2017 (paper Table 5: 4.3M, mAP 23.5).
# Same training as its twin ssdlite320_mobilenext_coco.py; only the backbone differs. The twin's
# checkpoints/mobilenext_in1k.pth (the authors' ImageNet weights, converted) starts
# EAN-MobileNeXt as the plain network, exactly (docs/weights.md, "Which weights to start from").
_base_ = './ssdlite320_mobilenext_coco.py'

model = dict(backbone=dict(type='ean_mm.EANMobileNeXt', ean_groups=8))
