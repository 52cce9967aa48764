# Faster R-CNN with CA-ResNet-50 (r=32, >= 8 channels) on PASCAL VOC; same training as
# faster_rcnn_r50_voc.py and faster_rcnn_ean_r50_voc.py (the paper reports no Faster R-CNN VOC
# results; Table 5 COCO: 44.7M, mAP 38.0).
_base_ = './faster_rcnn_r50_voc.py'

model = dict(
    backbone=dict(
        type='ean_mm.AttentionResNet',
        attention_cfg=dict(type='ean_mm.CoordAttention', reduction=32, min_channels=8),
        init_cfg=dict(checkpoint='checkpoints/ca_r50_in1k.pth', prefix='backbone.')))
