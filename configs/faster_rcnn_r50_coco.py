# Faster R-CNN R50-FPN on COCO 2017 with the EAN paper's schedule; the baseline of
# faster_rcnn_ean_r50_coco.py (Table 5: ResNet50 41.7M, 36.4 mAP).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    './_base_/paper_detection_schedule.py',
]
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)
# The backbone starts from torchvision://resnet50, as in mmdet's config.

# COCO: batch 16 (8 GPUs x 2), lr 0.01.
train_dataloader = dict(batch_size=2)
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(base_batch_size=16)

train_cfg = {{_base_.paper_train_cfg}}
param_scheduler = {{_base_.paper_param_scheduler}}
default_hooks = {{_base_.paper_default_hooks}}
log_processor = {{_base_.paper_log_processor}}
