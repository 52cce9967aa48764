# The EAN paper's detection schedule (Implementation Details): SGD, 500-iteration linear warm-up,
# 200k iterations, learning rate x0.1 at 120k and 180k. Learning rate and batch size differ
# between COCO (16, 0.01) and VOC (32, 0.001) and are set by the configs.
# Detection configs pick these up with ``{{_base_.paper_*}}``: the names do not collide with the
# keys of the mmdet config they also inherit.
paper_train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=200000, val_interval=10000)
paper_param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=200000,
         milestones=[120000, 180000], gamma=0.1),
]
paper_default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=3))
paper_log_processor = dict(by_epoch=False)
