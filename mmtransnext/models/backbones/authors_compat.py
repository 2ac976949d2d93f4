"""The authors' backbone vocabulary, built as this package's :class:`TransNeXt`.

Their four downstream codebases (Mask R-CNN on mmdet 2.x, DINO on mmdet 3.0, UPerNet on
mmseg 0.x, Mask2Former on mmseg 1.x) register one backbone type per variant
(``type='transnext_tiny'``) and configure it with their own keywords (``pretrained``,
``is_extrapolation``, ``scales``, ...). Registered under those names, the functions below
translate such a dict into TransNeXt's arguments, log the equivalent ``type='TransNeXt'``
dict, and build it, so their config files need only ``custom_imports``.

Their configs swap the backbone of a ResNet recipe, so without ``_delete_=True`` the
backbone dict also carries the ResNet keys of the ``_base_`` (``depth``, ``norm_cfg``, ...),
which their class swallowed. Here such keys are dropped, with a warning, only when every
one of them holds a value that mmdet's or mmseg's ResNet bases set (:data:`RESNET_BASE`);
any other value is an error that asks for ``_delete_=True``. Every other unknown key is an
error too: nothing is swallowed silently.
"""
import inspect
import logging

from mmengine.logging import print_log

from .arch_settings import ARCH_ZOO
from .transnext import TransNeXt

VARIANTS = ('micro', 'tiny', 'small', 'base')
# the ResNet weights that mmdet's and mmseg's ResNet bases load
_RESNET_CKPTS = ('torchvision://resnet50', 'torchvision://resnet101',
                 'open-mmlab://resnet50_v1c', 'open-mmlab://resnet101_v1c',
                 'open-mmlab://detectron2/resnet50_caffe')


def _same(value, variant):
    return value


def _pretrained(path, variant):
    if path in _RESNET_CKPTS:
        raise ValueError(
            f'transnext_{variant}: pretrained={path!r} is a ResNet checkpoint from the '
            "_base_ config (mmseg's EncoderDecoder hands the model-level pretrained to "
            'the backbone); set model.pretrained=None and give the TransNeXt checkpoint '
            "as the backbone's pretrained")
    return None if path is None else dict(type='Pretrained', checkpoint=path)


def _extrapolation(flag, variant):
    return 'extrapolate' if flag else 'interpolate'


SCALES_TO_OUT_INDICES = {4: (1, 2, 3), 5: (0, 1, 2, 3)}  # DINO 4-scale: stages 2-4


def _scales(scales, variant):
    if scales not in SCALES_TO_OUT_INDICES:
        raise ValueError(f'transnext_{variant}: scales={scales!r}; the authors\' DINO '
                         f'backbone takes {sorted(SCALES_TO_OUT_INDICES)}')
    return SCALES_TO_OUT_INDICES[scales]


def _window_size(window_size, variant):
    arch = dict(ARCH_ZOO[variant], window_size=list(window_size))
    return variant if arch == ARCH_ZOO[variant] else arch


def _num_stages(num_stages, variant):
    if num_stages != 4:
        raise ValueError(f'transnext_{variant}: num_stages={num_stages!r}; TransNeXt has 4')
    return None  # nothing to set


# The translation: the authors' keyword -> (TransNeXt keyword, value translation).
# TransNeXt keywords that are not here are accepted under their own names.
TRANSLATION = {
    'pretrained': ('init_cfg', _pretrained),
    'is_extrapolation': ('pos_bias', _extrapolation),
    'scales': ('out_indices', _scales),
    'window_size': ('arch', _window_size),
    'in_chans': ('in_channels', _same),
    'num_stages': (None, _num_stages),
    'img_size': ('img_size', _same),
    'pretrain_size': ('pretrain_size', _same),  # None: img_size, the authors' rule
    'drop_path_rate': ('drop_path_rate', _same),
    'drop_rate': ('drop_rate', _same),
    'attn_drop_rate': ('attn_drop_rate', _same),
    'qkv_bias': ('qkv_bias', _same),
}

# The keys a ResNet ``_base_`` merges into the backbone dict, with every value that the
# ResNet bases of mmdet (2.x, 3.x: Mask R-CNN, DINO) and mmseg (0.x, 1.x: UPerNet,
# Mask2Former) set. out_indices, frozen_stages and init_cfg are TransNeXt keywords too:
# they are dropped only together with ResNet-only keys (their backbone ignored them;
# ResNet's frozen_stages counts from 1, TransNeXt's from 0).
RESNET_BASE = {
    'depth': (50, 101),
    'num_stages': (4,),
    'out_indices': ((0, 1, 2, 3), (1, 2, 3)),
    'frozen_stages': (-1, 1),
    'strides': ((1, 2, 2, 2),),
    'dilations': ((1, 1, 1, 1),),
    'style': ('pytorch', 'caffe'),
    'deep_stem': (False,),
    'contract_dilation': (True,),
    'norm_eval': (True, False),
    'norm_cfg': tuple(dict(type=t, requires_grad=g) for t in ('BN', 'SyncBN')
                      for g in (True, False)),
    'init_cfg': tuple(dict(type='Pretrained', checkpoint=c) for c in _RESNET_CKPTS),
    'pretrained': _RESNET_CKPTS,  # mmseg: the model-level pretrained, handed down
}
_OWN = tuple(p for p in inspect.signature(TransNeXt).parameters if p != 'arch')
_SHARED = RESNET_BASE.keys() & {*TRANSLATION, *_OWN}  # a meaning here and in ResNet


def _plain(value):
    """Config values (ConfigDict, lists) as comparable built-ins."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _is_base_value(key, value):
    return _plain(value) in tuple(_plain(v) for v in RESNET_BASE[key])


def _resnet_leftovers(kwargs, name):
    """Pop the ResNet base's keys from ``kwargs`` if it has any; error on foreign values."""
    if not set(kwargs) & (RESNET_BASE.keys() - _SHARED):
        return []
    from_base = [k for k in RESNET_BASE if k in kwargs and _is_base_value(k, kwargs[k])]
    foreign = [k for k in RESNET_BASE.keys() - _SHARED
               if k in kwargs and k not in from_base]
    if foreign:
        raise ValueError(
            f'{name}: {", ".join(f"{k}={kwargs[k]!r}" for k in sorted(foreign))} reached '
            'the backbone from a ResNet _base_ with a value no mmdet / mmseg ResNet base '
            "sets. Add _delete_=True to the backbone dict (model = dict(backbone=dict("
            f"_delete_=True, type='{name}', ...))) so that it does not inherit them.")
    for k in from_base:
        kwargs.pop(k)
    return from_base


def translate(variant, kwargs):
    """The authors' ``transnext_<variant>`` keywords -> (TransNeXt kwargs, dropped keys)."""
    name = f'transnext_{variant}'
    kwargs = dict(kwargs)
    dropped = _resnet_leftovers(kwargs, name)
    unknown = sorted(set(kwargs) - TRANSLATION.keys() - set(_OWN))
    if unknown or 'arch' in kwargs:
        raise TypeError(
            f'{name} got unknown keyword(s) {unknown or ["arch"]} (the type names the '
            f'variant). It takes the authors\' keywords {sorted(TRANSLATION)} and '
            f'TransNeXt\'s {sorted(_OWN)}; keys from a ResNet _base_ need _delete_=True.')
    ours = dict(arch=variant)
    came_from = {}
    for key, value in kwargs.items():
        target, convert = TRANSLATION.get(key, (key, _same))
        value = convert(value, variant)
        if target is None:
            continue
        if target in ours and target in came_from and _plain(ours[target]) != _plain(value):
            raise ValueError(f'{name}: {came_from[target]}={kwargs[came_from[target]]!r} '
                             f'and {key}={kwargs[key]!r} both set {target}, differently; '
                             'keep one')
        ours[target] = value
        came_from[target] = key
    if ours.get('pretrain_size', 0) is None:
        img_size = ours.get('img_size', 224)
        ours['pretrain_size'] = img_size if isinstance(img_size, int) else img_size[0]
    return ours, dropped


def build_authors_backbone(variant, **kwargs):
    """Build TransNeXt from the authors' ``transnext_<variant>`` keywords; log the
    equivalent settings (and any ResNet keys dropped)."""
    name = f'transnext_{variant}'
    ours, dropped = translate(variant, kwargs)
    if dropped:
        print_log(f'{name}: dropped {dropped}: ResNet settings from the _base_ config that '
                  "the authors' backbone ignored (ResNet's frozen_stages counts from 1, "
                  "TransNeXt's from 0). Add _delete_=True to the backbone dict to leave "
                  'them out.', logger='current', level=logging.WARNING)
    theirs = ', '.join(f'{k}={v!r}' for k, v in kwargs.items() if k not in dropped)
    settings = ', '.join(f'{k}={v!r}' for k, v in ours.items())
    print_log(f"{name}({theirs}) is built as dict(type='TransNeXt', {settings})",
              logger='current', level=logging.INFO)
    return TransNeXt(**ours)


def _entry_point(variant):
    def build(**kwargs):
        return build_authors_backbone(variant, **kwargs)
    build.__name__ = build.__qualname__ = f'transnext_{variant}'
    build.__doc__ = f"The authors' ``type='transnext_{variant}'`` backbone, as TransNeXt."
    return build


AUTHORS_TYPES = {f'transnext_{v}': _entry_point(v) for v in VARIANTS}
