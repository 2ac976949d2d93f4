# TransNeXt-Small fine-tuned at 384 px on ImageNet-1k from the 224 px weights.
# Main use: evaluating the authors' 384 px weights. The fine-tuning schedule below
# (30 epochs, AdamW 2e-5 at batch 1024, wd 1e-8) follows Swin's 384 px recipe; it is not
# from the TransNeXt summary this package follows.
_base_ = './transnext_small.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(backbone=dict(img_size=384))
load_from = 'checkpoints/transnext_small_224_1k.pth'

bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=bgr_mean, fill_std=bgr_std),
    dict(type='PackInputs'),
]
# at 384 the authors resize straight to 384 x 384, without a crop
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(384, 384), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-5, weight_decay=1e-8))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-7, by_epoch=True, begin=5),
]
train_cfg = dict(max_epochs=30)
