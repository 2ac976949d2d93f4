"""timm entry points: ``timm.create_model('transnext_tiny', num_classes=1000)``.

Weights cannot be fetched from a hub here: pass ``checkpoint_path=`` (an official ImageNet
checkpoint) to ``timm.create_model``; ``pretrained=True`` raises and says so.
"""
from .transnext_cls import TransNeXtClassifier

_TIMM_ARCHS = {'transnext_micro': 'micro', 'transnext_tiny': 'tiny',
               'transnext_small': 'small', 'transnext_base': 'base',
               'transnext_micro_aaaa': 'micro-aaaa'}
_DEFAULT_SIZE = {'micro-aaaa': 256}


def _create(default_arch, pretrained=False, **kwargs):
    if pretrained:
        raise ValueError('pretrained=True would download weights, which mmtransnext does not '
                         'do; pass checkpoint_path=<official .pth> to timm.create_model.')
    for timm_only in ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir'):
        kwargs.pop(timm_only, None)
    kwargs.setdefault('arch', default_arch)  # an arch dict may replace the named variant
    kwargs.setdefault('img_size', _DEFAULT_SIZE.get(default_arch, 224))
    return TransNeXtClassifier(**kwargs)


def _entry_point(name, arch):
    def create(pretrained=False, **kwargs):
        return _create(arch, pretrained, **kwargs)
    create.__name__ = create.__qualname__ = name
    create.__module__ = __name__
    create.__doc__ = f'TransNeXt-{arch} ImageNet classifier.'
    return create


def register_timm_models():
    from timm.models import register_model, is_model
    for name, arch in _TIMM_ARCHS.items():
        if not is_model(name):
            globals()[name] = register_model(_entry_point(name, arch))
