# EAN-ResNet-50 on ImageNet-1k, fine-tuned from torchvision's ResNet-50 (IMAGENET1K_V1, 76.13
# top-1): the EAN network starts as that network, exactly (its bn3s doubled, EAN fresh), and the
# head from torchvision's fc. For EAN's ImageNet accuracy without a 100-epoch run.
# Schedule (ours, not measured here: no ImageNet on this machine): 10 epochs, SGD lr 0.01 with a
# cosine decay to 0, otherwise ean_r50_in1k.py's recipe (batch 256, wd 1e-4). Training starts at
# a converged solution, so it is a fine-tune - a tenth of the from-scratch lr and of its epochs:
# the features need adapting around EAN's 944 new parameters, not learning again. A cosine decay
# needs no milestones for so short a run.
_base_ = './ean_r50_in1k.py'

model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    head=dict(init_cfg=dict(type='ean_mm.Pretrained', checkpoint='torchvision://resnet50')))

max_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
    T_max=max_epochs)
train_cfg = dict(max_epochs=max_epochs)
