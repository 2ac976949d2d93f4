# Mask R-CNN + TransNeXt-Tiny, COCO, 1x (12 epochs, batch 16). Paper: box 49.9 / mask 44.6.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/transnext_optim.py',
]
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='TransNeXt',
        arch='tiny',
        img_size=800,  # position bias built on an 800 grid and interpolated
        pretrain_size=224,
        pos_bias='interpolate',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/transnext_tiny_224_1k.pth')),
    neck=dict(in_channels=[72, 144, 288, 576]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor=_base_.transnext_optim_constructor,
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=_base_.transnext_paramwise_cfg)
