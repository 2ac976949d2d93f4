# Mask2Former + TransNeXt-Small, ADE20K, 160k. Paper mIoU: 54.1.
_base_ = './mask2former_transnext_tiny.py'
custom_imports = dict(imports=['mmdet.models', 'mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.5,
        init_cfg=dict(checkpoint='checkpoints/transnext_small_224_1k.pth')))
