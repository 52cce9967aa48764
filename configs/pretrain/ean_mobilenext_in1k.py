# EAN-MobileNeXt ImageNet-1k pretraining (paper Table 3: 74.21 top-1); its checkpoint
# (checkpoints/ean_mobilenext_in1k.pth) starts configs/ssdlite320_ean_mobilenext_{coco,voc}.py.
# Same training as mobilenext_in1k.py; only the backbone differs.
_base_ = './mobilenext_in1k.py'

model = dict(backbone=dict(type='ean_mm.EANMobileNeXt', ean_groups=8))
