# Mask R-CNN R50-FPN on COCO 2017 (boxes and masks): mmdet's stock recipe (1x schedule),
# unchanged; the plain twin of mask_rcnn_ean_r50_coco.py. The paper has no Mask R-CNN schedule.
# The backbone starts from torchvision://resnet50, as in mmdet's config.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['ean_mm'], allow_failed_imports=False)
