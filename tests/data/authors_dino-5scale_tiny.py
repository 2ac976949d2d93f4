# A DINO 5-scale TransNeXt-Tiny config for mmdet 3 in the authors' vocabulary: their
# backbone type and keywords (pretrained, img_size, pretrain_size, is_extrapolation,
# scales), _delete_=True as mmdet 3 configs swap backbones. Written for the tests from the
# documented keywords, not copied. The one line a user adds: custom_imports.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

num_levels = 5
model = dict(
    num_feature_levels=num_levels,
    backbone=dict(
        _delete_=True,
        type='transnext_tiny',
        pretrained=None,
        img_size=800,
        pretrain_size=224,
        is_extrapolation=False,
        drop_path_rate=0.3,
        scales=num_levels),
    neck=dict(in_channels=[72, 144, 288, 576], num_outs=num_levels),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=num_levels))),
    decoder=dict(layer_cfg=dict(cross_attn_cfg=dict(num_levels=num_levels))))
