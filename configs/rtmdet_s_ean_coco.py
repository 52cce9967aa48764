# RTMDet-s with EAN-CSPNeXt (G = 8, EAN after the pointwise conv's BN of every CSPNeXtBlock;
# RTMDet's channel attention kept): the stock recipe of its twin rtmdet_s_coco.py with only the
# backbone changed. The twin's CSPNeXt-s ImageNet checkpoint starts it exactly as the plain
# network (docs/detection.md).
_base_ = './rtmdet_s_coco.py'

model = dict(backbone=dict(type='ean_mm.EANCSPNeXt', ean_groups=8))
