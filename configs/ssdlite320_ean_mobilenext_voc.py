# SSDLite320 with EAN-MobileNeXt on PASCAL VOC (paper Table 4: 4.4M, mAP 73.4 on VOC2012 val).
# Same training as its twin ssdlite320_mobilenext_voc.py; only the backbone differs. The twin's
# checkpoints/mobilenext_in1k.pth (the authors' ImageNet weights, converted) starts
# EAN-MobileNeXt as the plain network, exactly (docs/weights.md, "Which weights to start from").
_base_ = './ssdlite320_mobilenext_voc.py'

model = dict(backbone=dict(type='ean_mm.EANMobileNeXt', ean_groups=8))
