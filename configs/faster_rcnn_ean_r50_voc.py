# Faster R-CNN with EAN-ResNet-50 on PASCAL VOC; same training as faster_rcnn_r50_voc.py.
# The twin's torchvision://resnet50 starts EAN-ResNet-50 as the plain network, exactly
# (docs/weights.md, "Which weights to start from"). The paper's protocol, an EAN ImageNet
# checkpoint instead:
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/ean_r50_in1k.pth \
#                 model.backbone.init_cfg.prefix=backbone.
_base_ = './faster_rcnn_r50_voc.py'

model = dict(backbone=dict(type='ean_mm.EANResNet', ean_groups=64))
