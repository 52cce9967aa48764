# EAN-MobileNetV2 ImageNet-1k pretraining (EAN paper Table 3: EAN-MV2, 3.50M, 72.80 top-1; G = 8).
# mmpretrain's own MobileNetV2 recipe with only the backbone changed, so that mmpretrain's
# MobileNetV2 config and its published checkpoint (same keys) are the plain twin. The paper's
# cosine schedule for lightweight networks is in mobilenext_in1k.py; here mmpretrain's 300-epoch
# schedule is kept for that comparison.
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)

model = dict(backbone=dict(type='ean_mm.EANMobileNetV2', ean_groups=8))
