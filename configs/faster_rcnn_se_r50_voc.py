# Faster R-CNN with SE-ResNet-50 (r=16) on PASCAL VOC; same training as faster_rcnn_r50_voc.py
# and faster_rcnn_ean_r50_voc.py (the paper reports no Faster R-CNN VOC results; Table 5 COCO:
# 44.3M, mAP 37.7).
_base_ = './faster_rcnn_r50_voc.py'

model = dict(
    backbone=dict(
        type='ean_mm.AttentionResNet',
        attention_cfg=dict(type='ean_mm.SE', reduction=16),
        init_cfg=dict(checkpoint='checkpoints/se_r50_in1k.pth', prefix='backbone.')))
