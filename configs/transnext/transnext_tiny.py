# TransNeXt-Tiny ImageNet-1k classifier, 224 px. Paper top-1: 84.0.
# Evaluate the authors' weights (converted, see checkpoints/README.md):
#   python tools/test.py configs/transnext/transnext_tiny.py \
#       checkpoints/transnext_tiny_224_1k.pth
# Training recipe: DeiT/Swin-style 300 epochs (AdamW 1e-3 at batch 1024, wd 0.05, cosine,
# RandAugment, Mixup/CutMix, label smoothing). The ImageNet training hyper-parameters are
# not part of the TransNeXt summary this package follows; check them before relying on them.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/transnext_optim.py',
]
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='TransNeXt',
        arch='tiny',
        img_size=224,
        pretrain_size=224,
        pos_bias='extrapolate',  # bias built at the input's own resolution
        out_indices=(3, ),
        drop_path_rate=0.25,
        init_cfg=None),
    neck=dict(type='GlobalAveragePooling'),  # mean of the last stage's normed tokens
    head=dict(
        type='LinearClsHead',  # keys head.fc.weight / head.fc.bias
        num_classes=1000,
        in_channels=576,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

# Evaluation as the authors: bicubic resize of the shorter side to 224 / 0.875 = 256,
# centre crop 224.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor=_base_.transnext_optim_constructor,
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, eps=1e-8,
                   betas=(0.9, 0.999)),
    paramwise_cfg=_base_.transnext_paramwise_cfg)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5),
]
auto_scale_lr = dict(base_batch_size=1024)
