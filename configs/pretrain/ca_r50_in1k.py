# CA-ResNet-50 (Coordinate Attention) ImageNet-1k pretraining, a baseline of the EAN paper
# (Table 3); its checkpoint (checkpoints/ca_r50_in1k.pth) starts
# configs/faster_rcnn_ca_r50_{coco,voc}.py. Same training as r50_in1k.py; only the backbone
# differs.
_base_ = './r50_in1k.py'

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='CoordAttention', reduction=32, min_channels=8),
             position='after_conv3')
    ]))
