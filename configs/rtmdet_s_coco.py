# RTMDet-s on COCO 2017: mmdet's stock recipe (300 epochs, batch 8 x 32), unchanged; the plain
# twin of rtmdet_s_ean_coco.py. The paper has no RTMDet schedule. The backbone starts from the
# CSPNeXt-s ImageNet checkpoint mmdet's config names (init_cfg, keys backbone.*).
_base_ = 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)
