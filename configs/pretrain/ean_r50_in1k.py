# EAN-ResNet-50 ImageNet-1k pretraining (paper Table 3: 25.56M params, 77.87 top-1); its
# checkpoint (checkpoints/ean_r50_in1k.pth) starts configs/faster_rcnn_ean_r50_{coco,voc}.py.
# Same training as r50_in1k.py; only the backbone differs.
_base_ = './r50_in1k.py'

model = dict(backbone=dict(type='ean_mm.EANResNet', ean_groups=64))
