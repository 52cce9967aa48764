# ResNet-50 ImageNet-1k pretraining: the plain twin of ean_r50_in1k.py, whose checkpoint
# (checkpoints/r50_in1k.pth) starts configs/faster_rcnn_r50_{coco,voc}.py.
# Paper (Implementation Details): batch 256, lr 0.1, weight decay 1e-4, the He et al. schedule.
# mmpretrain's resnet50_8xb32_in1k is exactly that (8 GPUs x 32, SGD 0.1, wd 1e-4, 100 epochs
# with lr x0.1 at 30/60/90: the standard fixed-epoch form of He et al.'s "divide by 10 when the
# error plateaus"), so only the backbone changes: mmdet's ResNet, so that the checkpoint's
# ``backbone.*`` keys are exactly those the detectors load.
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)

model = dict(backbone=dict(type='mmdet.ResNet', norm_eval=False))
