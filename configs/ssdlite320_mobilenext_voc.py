# SSDLite320 with a MobileNeXt backbone on PASCAL VOC; the baseline of
# ssdlite320_ean_mobilenext_voc.py (paper Table 4: 4.4M, 72.3 mAP on VOC2012 val).
# Same protocol as faster_rcnn_r50_voc.py: VOC2007 trainval + VOC2012 train -> VOC2012 val.
_base_ = './ssdlite320_mobilenext_coco.py'

model = dict(bbox_head=dict(num_classes=20))

# The VOC data section, as in faster_rcnn_r50_voc.py with this detector's pipelines.
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
