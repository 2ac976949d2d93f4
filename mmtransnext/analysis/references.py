"""What users would pick instead of TransNeXt-T, as backbones with four outputs: Swin-T
(mmdet's SwinTransformer, else mmpretrain's) and ConvNeXt-T (mmpretrain's), drop path off."""


def _swin():
    try:
        from mmdet.models.backbones import SwinTransformer
        return SwinTransformer(drop_path_rate=0.), 'mmdet SwinTransformer (tiny defaults)'
    except ImportError:
        from mmpretrain.models.backbones import SwinTransformer
        return (SwinTransformer(arch='tiny', out_indices=(0, 1, 2, 3), drop_path_rate=0.),
                "mmpretrain SwinTransformer(arch='tiny')")


def _convnext():
    from mmpretrain.models.backbones import ConvNeXt
    return (ConvNeXt(arch='tiny', out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                     drop_path_rate=0.),
            "mmpretrain ConvNeXt(arch='tiny')")


BUILDERS = {'swin': _swin, 'convnext': _convnext}
NAMES = {'swin': 'Swin-T', 'convnext': 'ConvNeXt-T'}


def build(name):
    """(model, what it is) for a reference name of :data:`BUILDERS`."""
    return BUILDERS[name]()
