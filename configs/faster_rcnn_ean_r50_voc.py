# Faster R-CNN with EAN-ResNet-50 on PASCAL VOC; same training as faster_rcnn_r50_voc.py.
_base_ = './faster_rcnn_r50_voc.py'

model = dict(
    backbone=dict(
        type='ean_mm.EANResNet',
        ean_groups=64,
        init_cfg=dict(checkpoint='checkpoints/ean_r50_in1k.pth')))
