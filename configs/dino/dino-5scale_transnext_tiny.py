# DINO 5-scale + TransNeXt-Tiny: all four stages feed the neck, which adds the fifth
# level (stride 64). COCO, 12 epochs, batch 16. Paper: box 55.7.
_base_ = './dino-4scale_transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

num_levels = 5
model = dict(
    num_feature_levels=num_levels,
    backbone=dict(out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[72, 144, 288, 576], num_outs=num_levels),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=num_levels))),
    decoder=dict(layer_cfg=dict(cross_attn_cfg=dict(num_levels=num_levels))))
