# UPerNet + TransNeXt-Base, ADE20K, 160k. Paper mIoU 53.0; ms+flip 53.5 / 53.7
# (interpolated / extrapolated bias).
_base_ = './upernet_transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.7,
        init_cfg=dict(checkpoint='checkpoints/transnext_base_224_1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
