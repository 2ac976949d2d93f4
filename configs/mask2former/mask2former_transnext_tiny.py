# Mask2Former + TransNeXt-Tiny, ADE20K, 160k iterations, batch 16, crop 512.
# Paper mIoU: 53.4.
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
    '../_base_/transnext_optim.py',
]
# mmdet.models: the Mask2Former head's pixel decoder, assigner and losses come from mmdet
custom_imports = dict(imports=['mmdet.models', 'mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='TransNeXt',
        arch='tiny',
        img_size=512,
        pretrain_size=224,
        pos_bias='interpolate',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/transnext_tiny_224_1k.pth')),
    decode_head=dict(in_channels=[72, 144, 288, 576]))

# Merged into mmseg's Mask2Former optimizer (AdamW 1e-4, weight decay 0.05, clip 0.01,
# no decay on the head's query_embed / query_feat / level_embed): backbone lr x0.1 and
# TransNeXt's no-decay parameters, combined by the TransNeXt constructor.
optim_wrapper = dict(
    constructor=_base_.transnext_optim_constructor,
    paramwise_cfg=_base_.transnext_paramwise_cfg_backbone_lr01)
