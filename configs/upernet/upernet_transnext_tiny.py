# UPerNet + TransNeXt-Tiny, ADE20K, 160k iterations, batch 16 (8 GPUs x 2), crop 512.
# Paper mIoU: 51.1 (single scale); ms+flip 51.5 (interpolated bias) / 51.7 (extrapolated):
# tools/test.py <this config> <ckpt> --aug-test [--pos-bias extrapolate]
_base_ = [
    'mmseg::_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../_base_/transnext_optim.py',
]
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='TransNeXt',
        arch='tiny',
        img_size=512,
        pretrain_size=224,
        pos_bias='interpolate',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/transnext_tiny_224_1k.pth')),
    decode_head=dict(in_channels=[72, 144, 288, 576], num_classes=150),
    # auxiliary FCN head on stage 3 (index 2)
    auxiliary_head=dict(in_channels=288, in_index=2, num_classes=150))

# AdamW 6e-5, weight decay 0.05; linear warmup for 1500 iterations, then poly decay
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor=_base_.transnext_optim_constructor,
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=_base_.transnext_paramwise_cfg)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Multi-scale + flip test (tools/test.py --aug-test): the image resized by 0.5 ... 1.75,
# each unflipped and flipped; SegTTAModel averages the 12 views.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_model = dict(type='SegTTAModel')
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
