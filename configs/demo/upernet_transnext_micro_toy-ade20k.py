# The demo (`make demo`): UPerNet + TransNeXt-micro trained from scratch on CPU on the toy
# ADE20K-format set that tools/misc/generate_toy_data.py writes (coloured shapes; ADE
# label 1 = background, 2..5 = the four shapes). Same recipe as the real UPerNet configs,
# scaled down: 128 px crops, a narrower head, a short schedule, no pretrained weights.
_base_ = '../upernet/upernet_transnext_tiny.py'

data_root = 'data/toy/ade20k'
crop_size = (128, 128)
max_iters = 500
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch='micro', img_size=128, drop_path_rate=0.1, init_cfg=None),
    decode_head=dict(in_channels=[48, 96, 192, 384], channels=128),
    auxiliary_head=dict(in_channels=192, channels=64))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(512, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# Trained from scratch: a higher lr than the fine-tuning recipe, short warmup, poly decay.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
custom_hooks = [dict(type='ProgressBarHook')]
# Reproducible: a fixed seed for init, sampler, augmentation and drop path (tools/demo.py
# --seed overrides it; the demo also fixes the CPU thread count). On the CPU that is all:
# its kernels are deterministic for a given thread count. mmengine's deterministic=True
# would stop a GPU run (bilinear-resize backward has no deterministic CUDA kernel).
randomness = dict(seed=0, deterministic=False)
