# SE-MobileNeXt ImageNet-1k pretraining, a comparison baseline of the EAN paper (Table 3);
# its checkpoint (checkpoints/se_mobilenext_in1k.pth) starts
# configs/ssdlite320_se_mobilenext_{coco,voc}.py. Same training as mobilenext_in1k.py.
_base_ = './mobilenext_in1k.py'

model = dict(backbone=dict(attention_cfg=dict(type='ean_mm.SE', reduction=16)))
