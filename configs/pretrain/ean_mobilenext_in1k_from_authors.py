# EAN-MobileNeXt on ImageNet-1k, fine-tuned from the MobileNeXt authors' ImageNet weights
# (converted to checkpoints/mobilenext_in1k.pth by tools/model_converters/mobilenext_official.py):
# the EAN network starts as theirs, exactly (the norm before each EAN doubled, EAN fresh), the
# head from their classifier.
# Schedule (ours, not measured here: no ImageNet on this machine): 20 epochs, SGD lr 0.0045 with
# a cosine decay to 0, otherwise ean_mobilenext_in1k.py's recipe (batch 256, wd 4e-5). Training
# starts at a converged solution, so it is a fine-tune: a tenth of the from-scratch lr and of its
# 200 epochs.
_base_ = './ean_mobilenext_in1k.py'

checkpoint = 'checkpoints/mobilenext_in1k.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    head=dict(init_cfg=dict(type='ean_mm.Pretrained', checkpoint=checkpoint, prefix='head.')))

max_epochs = 20
optim_wrapper = dict(optimizer=dict(lr=0.0045))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
    T_max=max_epochs)
train_cfg = dict(max_epochs=max_epochs)
