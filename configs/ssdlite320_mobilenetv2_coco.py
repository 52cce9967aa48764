# mmdet's stock SSDLite320-MobileNetV2 (COCO, from scratch, 600 epochs) with the one fix mmdet
# 3.3.0 needs to evaluate it: ean_mm's CompatSSDHead (upstream #11063 / #11780). The plain twin of
# ssdlite320_ean_mobilenetv2_coco.py.
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)

model = dict(bbox_head=dict(type='ean_mm.CompatSSDHead'))
