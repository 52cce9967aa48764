# Faster R-CNN with CA-ResNet-50 (Coordinate Attention, r=32, >= 8 channels) on COCO 2017: the
# CA baseline of the EAN paper (Table 5: 44.7M, mAP 38.0). Same training as
# faster_rcnn_r50_coco.py and faster_rcnn_ean_r50_coco.py; only the backbone differs.
_base_ = './faster_rcnn_r50_coco.py'

model = dict(
    backbone=dict(
        type='ean_mm.AttentionResNet',
        attention_cfg=dict(type='ean_mm.CoordAttention', reduction=32, min_channels=8),
        init_cfg=dict(checkpoint='checkpoints/ca_r50_in1k.pth', prefix='backbone.')))
