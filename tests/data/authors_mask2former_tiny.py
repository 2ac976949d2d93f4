# A Mask2Former TransNeXt-Tiny config for mmseg 1 in the authors' vocabulary, WITHOUT
# _delete_=True: the ResNet keys of the _base_ (depth, norm_cfg, init_cfg, ...) reach the
# backbone and are dropped with a warning. Written for the tests from the documented
# keywords, not copied. The one line a user adds: custom_imports (mmseg's Mask2Former
# base imports mmdet.models, so the list keeps it).
_base_ = 'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmdet.models', 'mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='transnext_tiny',
        pretrained=None,
        img_size=512,
        pretrain_size=224,
        is_extrapolation=True,
        drop_path_rate=0.3),
    decode_head=dict(in_channels=[72, 144, 288, 576]))
