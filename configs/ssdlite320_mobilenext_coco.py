# SSDLite320 with a MobileNeXt backbone on COCO 2017 with the EAN paper's schedule; the baseline
# of ssdlite320_ean_mobilenext_coco.py (Table 5: MobileNeXt 4.3M, 22.3 mAP).
_base_ = [
    'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
    './_base_/paper_detection_schedule.py',
]
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ean_mm.MobileNeXt',
        # Stage outputs at strides 16 and 32 (384 and 1280 channels), as mmdet's SSDLite takes
        # MobileNetV2's. The authors' SSDLite taps inside blocks instead (576 and 1280 channels):
        # out_indices=(5, 7), out_tap='pre_dw' (docs/backbones.md, "SSDLite taps").
        out_indices=(4, 7),
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        # The authors' ImageNet weights, converted by tools/model_converters/mobilenext_official.py
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mobilenext_in1k.pth',
                      prefix='backbone.')),
    neck=dict(in_channels=(384, 1280), out_channels=(384, 1280, 512, 256, 256, 128)),
    # mmdet 3.3.0's SSDHead cannot predict (upstream #11063 / #11780): ean_mm's CompatSSDHead
    # is the same head with that fixed.
    bbox_head=dict(type='ean_mm.CompatSSDHead', in_channels=(384, 1280, 512, 256, 256, 128)))

# COCO: batch 16 (8 GPUs x 2), lr 0.01.
train_dataloader = dict(batch_size=2)
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(base_batch_size=16)

train_cfg = {{_base_.paper_train_cfg}}
param_scheduler = {{_base_.paper_param_scheduler}}
default_hooks = {{_base_.paper_default_hooks}}
log_processor = {{_base_.paper_log_processor}}
