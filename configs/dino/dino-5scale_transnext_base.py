# DINO 5-scale + TransNeXt-Base, COCO, 12 epochs. Paper: box 57.1.
_base_ = './dino-5scale_transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(checkpoint='checkpoints/transnext_base_224_1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
