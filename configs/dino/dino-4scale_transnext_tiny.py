# DINO 4-scale + TransNeXt-Tiny (stages 2-4 feed the neck), COCO, 12 epochs, batch 16.
# Paper: box 55.1.
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    '../_base_/transnext_optim.py',
]
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='TransNeXt',
        arch='tiny',
        img_size=800,
        pretrain_size=224,
        pos_bias='interpolate',
        out_indices=(1, 2, 3),
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/transnext_tiny_224_1k.pth')),
    neck=dict(in_channels=[144, 288, 576]))

# AdamW 1e-4, weight decay 0.05, backbone lr x0.1, gradient clipping at 0.1
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor=_base_.transnext_optim_constructor,
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=_base_.transnext_paramwise_cfg_backbone_lr01)
