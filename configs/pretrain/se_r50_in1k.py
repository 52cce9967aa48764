# SE-ResNet-50 ImageNet-1k pretraining, a comparison baseline of the EAN paper (Table 3);
# its checkpoint (checkpoints/se_r50_in1k.pth) starts configs/faster_rcnn_se_r50_{coco,voc}.py.
# Same training as r50_in1k.py; only the backbone differs.
_base_ = './r50_in1k.py'

model = dict(
    backbone=dict(plugins=[dict(cfg=dict(type='SE', reduction=16), position='after_conv3')]))
