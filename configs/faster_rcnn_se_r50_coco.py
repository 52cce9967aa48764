# Faster R-CNN with SE-ResNet-50 (Squeeze-and-Excitation, r=16) on COCO 2017: the SE baseline
# of the EAN paper (Table 5: 44.3M, mAP 37.7). Same training as faster_rcnn_r50_coco.py and
# faster_rcnn_ean_r50_coco.py; only the backbone differs.
_base_ = './faster_rcnn_r50_coco.py'

model = dict(
    backbone=dict(
        type='ean_mm.AttentionResNet',
        attention_cfg=dict(type='ean_mm.SE', reduction=16),
        init_cfg=dict(checkpoint='checkpoints/se_r50_in1k.pth', prefix='backbone.')))
