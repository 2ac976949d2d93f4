# Mask2Former + TransNeXt-Base, ADE20K, 160k. Paper mIoU: 54.7.
_base_ = './mask2former_transnext_tiny.py'
custom_imports = dict(imports=['mmdet.models', 'mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(checkpoint='checkpoints/transnext_base_224_1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
