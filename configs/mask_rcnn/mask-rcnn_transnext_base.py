# Mask R-CNN + TransNeXt-Base, COCO, 1x. Paper: box 51.7 / mask 45.9.
_base_ = './mask-rcnn_transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.7,
        init_cfg=dict(checkpoint='checkpoints/transnext_base_224_1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
