# CA-ResNet-50 (Coordinate Attention) ImageNet-1k pretraining, a baseline of the EAN paper
# (Table 3); its checkpoint (checkpoints/ca_r50_in1k.pth) starts
# configs/faster_rcnn_ca_r50_{coco,voc}.py. Same training as r50_in1k.py; only the backbone
# differs.
_base_ = './r50_in1k.py'

model = dict(
    backbone=dict(
        type='ean_mm.AttentionResNet',
        attention_cfg=dict(type='ean_mm.CoordAttention', reduction=32, min_channels=8)))
