# MobileNeXt ImageNet-1k pretraining: the plain twin of ean_mobilenext_in1k.py. The network is the
# MobileNeXt authors' (3,535,416 parameters, EAN paper Table 3: 3.54M) with their classifier
# (dropout 0.2, linear); their published ImageNet weights convert into a checkpoint of this config
# with tools/model_converters/mobilenext_official.py (docs/weights.md).
# Paper (Implementation Details): lightweight networks use a cosine schedule and weight decay
# 4e-5. Batch 256 and lr 0.045 come from mmpretrain's MobileNetV2 config; the paper gives no
# other length, and a cosine schedule needs one: 200 epochs, our choice - long enough for a
# lightweight network to converge, shorter than MobileNetV2's 300-epoch step schedule.
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='ean_mm.MobileNeXt', out_indices=(7, )),
    head=dict(type='ean_mm.DropoutLinearClsHead', dropout_rate=0.2))

max_epochs = 200
optim_wrapper = dict(optimizer=dict(weight_decay=4e-5))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
    T_max=max_epochs)
train_cfg = dict(max_epochs=max_epochs)
