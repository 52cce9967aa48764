# CA-MobileNeXt (Coordinate Attention) ImageNet-1k pretraining, a baseline of the EAN paper
# (Table 3); its checkpoint (checkpoints/ca_mobilenext_in1k.pth) starts
# configs/ssdlite320_ca_mobilenext_{coco,voc}.py. Same training as mobilenext_in1k.py.
_base_ = './mobilenext_in1k.py'

model = dict(
    backbone=dict(attention_cfg=dict(type='ean_mm.CoordAttention', reduction=32, min_channels=8)))
