# DINO 5-scale + TransNeXt-Small, COCO, 12 epochs. Paper: box 56.6.
_base_ = './dino-5scale_transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.5,
        init_cfg=dict(checkpoint='checkpoints/transnext_small_224_1k.pth')))
