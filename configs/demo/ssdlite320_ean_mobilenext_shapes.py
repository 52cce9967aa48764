# The embedded demo: configs/ssdlite320_ean_mobilenext_coco.py trained from scratch on the
# synthetic shapes written by tools/misc/make_synthetic_data.py (COCO layout). Only data, schedule
# and scale differ from the real config.
_base_ = '../ssdlite320_ean_mobilenext_coco.py'

# Data: three shape classes under data/demo/coco/.
data_root = 'data/demo/coco/'
metainfo = dict(classes=('circle', 'square', 'triangle'))
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(dataset=dict(data_root=data_root, metainfo=metainfo)))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# Scale: three classes, no ImageNet checkpoint (the backbone starts from its default init).
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=3))

# Schedule: a few hundred iterations on one CPU.
max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, T_max=max_iters,
         eta_min=0.0005),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)  # a reproducible demo
