"""The authors' backbone vocabulary (type='transnext_tiny', pretrained=..., scales=...)
builds this package's TransNeXt, with a log line naming the equivalent settings; ResNet
keys from a _base_ are dropped only when they hold a ResNet base's values; nothing else
unknown passes."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import MODELS

import mmtransnext  # noqa: F401 (registers the types)
from mmtransnext.models import TransNeXt
from mmtransnext.models.backbones import authors_compat
from mmtransnext.models.backbones.authors_compat import translate

DATA = Path(__file__).resolve().parents[1] / 'data'


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(authors_compat, 'print_log',
                        lambda msg, logger=None, level=None: lines.append((level, msg)))
    return lines


def test_translation():
    ours, dropped = translate('tiny', dict(
        pretrained='ckpt.pth', img_size=800, pretrain_size=224, is_extrapolation=True,
        scales=4, window_size=[3, 3, 3, None], drop_path_rate=0.3, in_chans=3,
        num_stages=4))
    assert dropped == []
    assert ours == dict(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint='ckpt.pth'),
                        img_size=800, pretrain_size=224, pos_bias='extrapolate',
                        out_indices=(1, 2, 3), drop_path_rate=0.3, in_channels=3)
    ours, _ = translate('micro', dict(
        scales=5, is_extrapolation=False, pretrained=None, img_size=256, pretrain_size=None,
        window_size=[5, 5, 3, None]))
    assert ours['out_indices'] == (0, 1, 2, 3) and ours['pos_bias'] == 'interpolate'
    assert ours['init_cfg'] is None
    assert ours['pretrain_size'] == 256  # the authors' rule: None means img_size
    assert ours['arch']['window_size'] == [5, 5, 3, None]
    assert ours['arch']['embed_dims'] == [48, 96, 192, 384]


def test_every_variant_registered():
    for variant in ('micro', 'tiny', 'small', 'base'):
        assert MODELS.get(f'transnext_{variant}').__name__ == f'transnext_{variant}'
        assert translate(variant, {})[0] == dict(arch=variant)


def test_build_from_registry_logs_equivalent(logged):
    variant = 'micro'
    model = MODELS.build(dict(type=f'transnext_{variant}', img_size=64, scales=4,
                              is_extrapolation=True, drop_path_rate=0.1))
    assert type(model) is TransNeXt
    assert model.embed_dims[0] == 48 and model.out_indices == (1, 2, 3)
    assert model.pos_bias == 'extrapolate'
    (level, msg), = logged
    assert msg.startswith(f'transnext_{variant}(img_size=64, scales=4, ')
    assert (f"is built as dict(type='TransNeXt', arch='{variant}', img_size=64, "
            "out_indices=(1, 2, 3), pos_bias='extrapolate', drop_path_rate=0.1)") in msg


# The ResNet backbones of the bases the authors' four codebases swap out (the mmdet 3 /
# mmseg 1 copies of them: mmdet 2 / mmseg 0 set the same keys and values).
RESNET_BASES = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py',
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
]


@pytest.mark.parametrize('base', RESNET_BASES)
def test_resnet_base_keys_dropped_with_warning(logged, base):
    cfg = get_config(base)
    resnet = {k: v for k, v in cfg.model.backbone.items() if k != 'type'}
    if cfg.model.get('pretrained'):  # mmseg's EncoderDecoder hands it to the backbone
        resnet['pretrained'] = cfg.model.pretrained
    ours, dropped = translate('micro', dict(resnet, img_size=64, drop_path_rate=0.2))
    assert sorted(dropped) == sorted(resnet)
    assert ours == dict(arch='micro', img_size=64, drop_path_rate=0.2)
    MODELS.build(dict(resnet, type='transnext_micro', img_size=64))
    assert logged[0][0] == 30 and 'Add _delete_=True' in logged[0][1]  # WARNING


@pytest.mark.parametrize('extra,error,words', [
    (dict(depth=50, norm_cfg=dict(type='GN', num_groups=32)), ValueError,
     ["norm_cfg={'type': 'GN'", '_delete_=True']),
    (dict(depth=34), ValueError, ['depth=34', '_delete_=True']),
    (dict(drop_path_rat=0.1), TypeError, ["['drop_path_rat']", 'drop_path_rate']),
    (dict(depth=50, num_classes=80), TypeError, ["['num_classes']"]),
    (dict(arch='base'), TypeError, ['the type names the variant']),
    (dict(scales=3), ValueError, ['scales=3', '[4, 5]']),
    (dict(num_stages=3), ValueError, ['num_stages=3']),
    (dict(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth')),
     ValueError, ['both set init_cfg']),
    (dict(is_extrapolation=True, pos_bias='interpolate'), ValueError, ['both set pos_bias']),
    (dict(scales=5, out_indices=(3,)), ValueError, ['both set out_indices']),
    (dict(pretrained='open-mmlab://resnet50_v1c'), ValueError,
     ['ResNet checkpoint', 'model.pretrained=None']),
])
def test_errors_name_the_problem(extra, error, words):
    with pytest.raises(error) as info:
        MODELS.build(dict(type='transnext_micro', img_size=64, **extra))
    for word in words:
        assert word in str(info.value), str(info.value)


def test_own_keywords_accepted():
    model = MODELS.build(dict(type='transnext_micro', img_size=64, out_indices=(3,),
                              frozen_stages=0, pos_bias='linear', init_cfg=None))
    assert model.out_indices == (3,) and model.frozen_stages == 0
    assert model.pos_bias == 'linear'


@pytest.mark.parametrize('config,scope,pos_bias,out_indices,warns', [
    ('authors_dino-5scale_tiny.py', 'mmdet', 'interpolate', (0, 1, 2, 3), False),
    ('authors_mask2former_tiny.py', 'mmseg', 'extrapolate', (0, 1, 2, 3), True),
])
def test_authors_style_configs_build(logged, config, scope, pos_bias, out_indices, warns):
    """Config files in the authors' vocabulary build with only custom_imports added."""
    cfg = Config.fromfile(str(DATA / config))
    from mmengine.registry import init_default_scope
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(cfg.model)
    assert type(model.backbone) is TransNeXt
    assert model.backbone.embed_dims == [72, 144, 288, 576]
    assert model.backbone.pos_bias == pos_bias
    assert model.backbone.out_indices == out_indices
    assert model.backbone.init_cfg is None
    assert any('is built as' in msg for _, msg in logged)
    assert any('Add _delete_=True' in msg for _, msg in logged) == warns
