# Faster R-CNN R50-FPN on PASCAL VOC with the EAN paper's schedule; the baseline of
# faster_rcnn_ean_r50_voc.py.
# Protocol (paper Table 4): train on VOC2007 trainval + VOC2012 train, evaluate on VOC2012 val
# with VOC2012's area AP. Classic VOC2007 test: see docs/voc.md.
_base_ = [
    'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py',
    './_base_/paper_detection_schedule.py',
]
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)
# The backbone starts from torchvision://resnet50, as in mmdet's config.

# The VOC data section, as in ssdlite320_mobilenext_voc.py with this detector's pipelines.
voc_root = 'data/VOCdevkit/'
voc_train = dict(
    type='VOCDataset',
    data_root=voc_root,
    filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
    pipeline={{_base_.train_pipeline}})
# VOC: batch 32 (8 GPUs x 4), lr 0.001.
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        dataset=dict(
            _delete_=True,
            type='ConcatDataset',
            ignore_keys=['dataset_type'],
            datasets=[
                dict(voc_train, ann_file='VOC2007/ImageSets/Main/trainval.txt',
                     data_prefix=dict(sub_data_root='VOC2007/')),
                dict(voc_train, ann_file='VOC2012/ImageSets/Main/train.txt',
                     data_prefix=dict(sub_data_root='VOC2012/')),
            ])))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='VOCDataset',
        data_root=voc_root,
        ann_file='VOC2012/ImageSets/Main/val.txt',
        data_prefix=dict(sub_data_root='VOC2012/'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='VOCMetric', metric='mAP', eval_mode='area')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=0.001))
auto_scale_lr = dict(base_batch_size=32)

train_cfg = {{_base_.paper_train_cfg}}
param_scheduler = {{_base_.paper_param_scheduler}}
default_hooks = {{_base_.paper_default_hooks}}
log_processor = {{_base_.paper_log_processor}}
