# UPerNet + TransNeXt-Small, ADE20K, 160k. Paper mIoU 52.2; ms+flip 52.5 / 52.8
# (interpolated / extrapolated bias).
_base_ = './upernet_transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.6,
        init_cfg=dict(checkpoint='checkpoints/transnext_small_224_1k.pth')))
