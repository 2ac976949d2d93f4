# Mask R-CNN + TransNeXt-Small, COCO, 1x. Paper: box 51.1 / mask 45.5.
_base_ = './mask-rcnn_transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.6,
        init_cfg=dict(checkpoint='checkpoints/transnext_small_224_1k.pth')))
