# RetinaNet with EAN-ResNet-50 (G = 64, after bn3 of every Bottleneck): the stock recipe of its
# twin retinanet_r50_coco.py with only the backbone changed. torchvision://resnet50 starts it
# exactly as the plain network (docs/weights.md, "Which weights to start from").
_base_ = './retinanet_r50_coco.py'

model = dict(backbone=dict(type='ean_mm.EANResNet', ean_groups=64))
