"""Every config loads, carries the settings of the released models, and builds its model.

Models are built at full size (tiny / small / base) on CPU without loading weights; the
parameter count of each is printed (pytest -s) and checked against the backbone size.
"""
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / 'configs'
CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py') if '_base_' not in p.parts)

# drop path per family and variant (Mask R-CNN: the authors' released backbones)
DETSEG_DROP_PATH = {
    'mask_rcnn': dict(tiny=0.4, small=0.6, base=0.7),
    'dino': dict(tiny=0.3, small=0.5, base=0.6),
    'upernet': dict(tiny=0.4, small=0.6, base=0.7),
    'mask2former': dict(tiny=0.3, small=0.5, base=0.6)}
DIMS = dict(micro=[48, 96, 192, 384], tiny=[72, 144, 288, 576], small=[72, 144, 288, 576],
            base=[96, 192, 384, 768])
DIMS['micro-aaaa'] = DIMS['micro']
# backbone parameters in millions (without the classifier head), loose bounds
BACKBONE_M = dict(micro=(12, 15), tiny=(26, 29), small=(48, 51), base=(87, 90))
BACKBONE_M['micro-aaaa'] = BACKBONE_M['micro']
CLS_M = {'micro': 12.8, 'tiny': 28.2, 'small': 49.7, 'base': 89.7, 'micro-aaaa': 13.1}  # paper
NO_DECAY_KEYS = {'query_embedding', 'relative_pos_bias_local', 'cpb_fc1', 'cpb_fc2',
                 'temperature'}


def _id(path):
    return str(path.relative_to(CONFIG_DIR))


RELEASE_FAMILIES = ('mask_rcnn', 'dino', 'upernet', 'mask2former', 'transnext')


def test_expected_config_files():
    names = {_id(p) for p in CONFIGS if p.parent.name in RELEASE_FAMILIES}
    # one scheme for every family, as on the card: <algo>_transnext_<variant>[_<size>].py
    variants = ('tiny', 'small', 'base')
    expected = {f'mask_rcnn/mask-rcnn_transnext_{v}.py' for v in variants}
    expected |= {'dino/dino-4scale_transnext_tiny.py'}
    expected |= {f'dino/dino-5scale_transnext_{v}.py' for v in variants}
    expected |= {f'upernet/upernet_transnext_{v}.py' for v in variants}
    expected |= {f'mask2former/mask2former_transnext_{v}.py' for v in variants}
    expected |= {f'transnext/transnext_{a}.py' for a in ('micro',) + variants}
    expected |= {'transnext/transnext_micro_aaaa.py',
                 'transnext/transnext_small_384px.py',
                 'transnext/transnext_base_384px.py'}
    assert names == expected


@pytest.fixture(scope='module', params=CONFIGS, ids=_id)
def cfg(request):
    return request.param, Config.fromfile(str(request.param))


def test_custom_imports_and_optimizer(cfg):
    path, cfg = cfg
    assert 'mmtransnext' in cfg.custom_imports.imports
    assert cfg.custom_imports.allow_failed_imports is False
    ow = cfg.optim_wrapper
    assert ow.constructor == 'TransNeXtOptimWrapperConstructor'
    assert ow.optimizer.type == 'AdamW'
    pw = ow.paramwise_cfg
    assert pw.norm_decay_mult == 0 and pw.bias_decay_mult == 0
    for key in NO_DECAY_KEYS:
        assert pw.custom_keys[key].decay_mult == 0
    family = path.parent.name
    backbone_lr = pw.custom_keys.get('backbone', {}).get('lr_mult', 1.0)
    if family in RELEASE_FAMILIES:
        assert backbone_lr == (0.1 if family in ('dino', 'mask2former') else 1.0)


def test_released_settings(cfg):
    path, cfg = cfg
    family, name = path.parent.name, path.name
    if family not in RELEASE_FAMILIES:  # e.g. configs/demo: checked by its own tests
        return
    bb = cfg.model.backbone
    assert bb.type == 'TransNeXt'
    if family == 'transnext':
        assert bb.pos_bias == 'extrapolate' and tuple(bb.out_indices) == (3, )
        assert cfg.model.head.type == 'LinearClsHead'
        assert cfg.model.head.in_channels == DIMS[bb.arch][3]
        # micro-aaaa is trained at 256 only, so its name carries no size
        default_size = 256 if 'aaaa' in name else 224
        size = int(re.search(r'(\d+)px', name).group(1)) if 'px' in name else default_size
        assert bb.img_size == size
        test = cfg.test_dataloader.dataset.pipeline
        if size == 384:  # no crop: straight to 384 x 384
            assert [t.type for t in test] == ['LoadImageFromFile', 'Resize', 'PackInputs']
            assert tuple(test[1].scale) == (384, 384)
        else:  # crop ratio 0.875
            assert test[1].type == 'ResizeEdge' and test[1].scale == int(size / 0.875)
            assert test[2].type == 'CenterCrop' and test[2].crop_size == size
        assert cfg.test_dataloader.dataset.pipeline == cfg.val_dataloader.dataset.pipeline
        if 'aaaa' in name:
            assert bb.arch == 'micro-aaaa'
        return
    variant = re.search(r'transnext_(tiny|small|base)\b', name).group(1)
    assert bb.arch == variant
    assert bb.drop_path_rate == DETSEG_DROP_PATH[family][variant]
    assert bb.pos_bias == 'interpolate'
    assert bb.init_cfg.type == 'Pretrained'
    assert bb.init_cfg.checkpoint == f'checkpoints/transnext_{variant}_224_1k.pth'
    dims = DIMS[bb.arch]
    if family in ('mask_rcnn', 'dino'):
        assert bb.img_size == 800
        assert cfg.optim_wrapper.optimizer.lr == 1e-4
        assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    if family == 'mask_rcnn':
        assert cfg.model.neck.in_channels == dims
        assert cfg.train_cfg.max_epochs == 12
    if family == 'dino':
        assert cfg.train_cfg.max_epochs == 12
        assert cfg.optim_wrapper.clip_grad.max_norm == 0.1
        if '4scale' in name:
            assert tuple(bb.out_indices) == (1, 2, 3)
            assert cfg.model.neck.in_channels == dims[1:] and cfg.model.neck.num_outs == 4
            assert cfg.model.get('num_feature_levels', 4) == 4  # DINO's default
        else:
            assert tuple(bb.out_indices) == (0, 1, 2, 3)
            assert cfg.model.neck.in_channels == dims and cfg.model.neck.num_outs == 5
            assert cfg.model.num_feature_levels == 5
            assert cfg.model.encoder.layer_cfg.self_attn_cfg.num_levels == 5
            assert cfg.model.decoder.layer_cfg.cross_attn_cfg.num_levels == 5
    if family in ('upernet', 'mask2former'):
        assert bb.img_size == 512
        assert cfg.train_cfg.max_iters == 160000
        assert cfg.train_dataloader.batch_size == 2
        assert cfg.model.decode_head.in_channels == dims
    if family == 'upernet':
        opt = cfg.optim_wrapper.optimizer
        assert (opt.lr, opt.weight_decay) == (6e-5, 0.05)
        warmup, poly = cfg.param_scheduler
        assert warmup.type == 'LinearLR' and warmup.end == 1500
        assert poly.type == 'PolyLR' and poly.begin == 1500 and poly.end == 160000
        aux = cfg.model.auxiliary_head
        assert aux.type == 'FCNHead' and aux.in_index == 2 and aux.in_channels == dims[2]
        assert cfg.tta_model.type == 'SegTTAModel'
        tta = cfg.tta_pipeline[1]
        assert [t.scale_factor for t in tta.transforms[0]] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
        assert [t.prob for t in tta.transforms[1]] == [0., 1.]
    if family == 'mask2former':
        opt = cfg.optim_wrapper.optimizer
        assert (opt.lr, opt.weight_decay) == (1e-4, 0.05)
        assert 'mmdet.models' in cfg.custom_imports.imports


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_model_builds(cfg, record_property):
    path, cfg = cfg
    init_default_scope(cfg.default_scope)
    scope = {'mmdet': 'mmdet', 'mmseg': 'mmseg', 'mmpretrain': 'mmpretrain'}[cfg.default_scope]
    models = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    torch.manual_seed(0)
    model = models.build(cfg.model)
    total, backbone = _count(model), _count(model.backbone)
    print(f'\n{_id(path)}: {total / 1e6:.2f} M parameters '
          f'(backbone {backbone / 1e6:.2f} M)')
    record_property('parameters', total)
    record_property('backbone_parameters', backbone)
    low, high = BACKBONE_M[cfg.model.backbone.arch]
    assert low * 1e6 < backbone < high * 1e6
    assert model.backbone.pos_bias == cfg.model.backbone.pos_bias
    if path.parent.name == 'transnext':  # the paper's classifier sizes
        assert abs(total / 1e6 - CLS_M[cfg.model.backbone.arch]) < 0.1
    del model
