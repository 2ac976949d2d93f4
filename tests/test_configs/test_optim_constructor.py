"""The parameter-wise lr / weight decay that the configs' optimizer settings give."""
from pathlib import Path

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import DefaultOptimWrapperConstructor, build_optim_wrapper

import mmtransnext  # noqa: F401  (registers TransNeXt and the constructor)
from mmtransnext.engine.optim_constructor import param_group_of
from mmtransnext.models import TransNeXt

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
TINY_ARCH = dict(embed_dims=[8, 16, 24, 32], num_heads=[1, 1, 1, 1], depths=[1, 1, 1, 1],
                 mlp_ratios=[2, 2, 2, 2], sr_ratios=[8, 4, 2, 1],
                 window_size=[3, 3, 3, None])


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.query_embed = nn.Embedding(4, 8)  # as in Mask2Former's head
        self.fc = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = TransNeXt(arch=TINY_ARCH)
        self.decode_head = Head()


def _optim_cfg(config):
    return Config.fromfile(str(CONFIGS / config)).optim_wrapper


def _lr_wd(wrapper, name):
    group = param_group_of(wrapper, name)
    return group['lr'], group['weight_decay']


@pytest.mark.parametrize('config', [
    'mask2former/mask2former_transnext_tiny.py',
    'dino/dino-4scale_transnext_tiny.py'])
def test_backbone_lr_and_no_decay_combine(config):
    cfg = _optim_cfg(config)
    lr, wd = cfg.optimizer.lr, cfg.optimizer.weight_decay
    wrapper = build_optim_wrapper(Detector(), cfg)
    # backbone temperature: backbone lr x0.1 AND no decay
    assert _lr_wd(wrapper, 'backbone.block1.0.attn.temperature') == \
        pytest.approx((0.1 * lr, 0.0))
    # other no-decay backbone parameters, same
    for name in ('backbone.block1.0.attn.query_embedding',
                 'backbone.block1.0.attn.relative_pos_bias_local',
                 'backbone.block1.0.attn.cpb_fc1.weight',
                 'backbone.block4.0.attn.cpb_fc2.weight',
                 'backbone.block1.0.attn.q.bias',
                 'backbone.norm1.weight', 'backbone.block2.0.norm1.bias'):
        assert _lr_wd(wrapper, name) == pytest.approx((0.1 * lr, 0.0)), name
    # backbone weight: lr x0.1, full decay
    assert _lr_wd(wrapper, 'backbone.block1.0.attn.q.weight') == pytest.approx((0.1 * lr, wd))
    assert _lr_wd(wrapper, 'backbone.block1.0.attn.learnable_tokens') == \
        pytest.approx((0.1 * lr, wd))
    # head weight: full lr and decay; head norm and bias: no decay
    assert _lr_wd(wrapper, 'decode_head.fc.weight') == pytest.approx((lr, wd))
    assert _lr_wd(wrapper, 'decode_head.fc.bias') == pytest.approx((lr, 0.0))
    assert _lr_wd(wrapper, 'decode_head.norm.weight') == pytest.approx((lr, 0.0))


def test_mask2former_head_keys_kept():
    cfg = _optim_cfg('mask2former/mask2former_transnext_tiny.py')
    lr = cfg.optimizer.lr
    wrapper = build_optim_wrapper(Detector(), cfg)
    # mmseg's Mask2Former key 'query_embed' (lr x1, no decay) still applies to the head
    assert _lr_wd(wrapper, 'decode_head.query_embed.weight') == pytest.approx((lr, 0.0))


def test_default_constructor_would_get_it_wrong():
    """Why the configs need the TransNeXt constructor: with mmengine's default only the
    longest matching key counts, so 'temperature' / 'query_embedding' beat 'backbone' and
    these backbone parameters would train at the full lr."""
    cfg = _optim_cfg('mask2former/mask2former_transnext_tiny.py')
    model = Detector()
    params = []
    DefaultOptimWrapperConstructor(dict(type='OptimWrapper', optimizer=cfg.optimizer),
                                   cfg.paramwise_cfg).add_params(params, model)
    attn = model.backbone.block1[0].attn
    for param in (attn.query_embedding, attn.temperature):
        group = next(g for g in params if g['params'][0] is param)
        assert group['lr'] == pytest.approx(cfg.optimizer.lr)  # not 0.1x


@pytest.mark.parametrize('config', [
    'mask_rcnn/mask-rcnn_transnext_tiny.py',
    'upernet/upernet_transnext_tiny.py',
    'transnext/transnext_tiny.py'])
def test_full_lr_families(config):
    cfg = _optim_cfg(config)
    lr, wd = cfg.optimizer.lr, cfg.optimizer.weight_decay
    wrapper = build_optim_wrapper(Detector(), cfg)
    assert _lr_wd(wrapper, 'backbone.block1.0.attn.temperature') == pytest.approx((lr, 0.0))
    assert _lr_wd(wrapper, 'backbone.block1.0.attn.q.weight') == pytest.approx((lr, wd))
    assert _lr_wd(wrapper, 'decode_head.fc.weight') == pytest.approx((lr, wd))
    assert _lr_wd(wrapper, 'backbone.norm4.weight') == pytest.approx((lr, 0.0))


def test_frozen_parameters_left_out():
    model = Detector()
    model.backbone = TransNeXt(arch=TINY_ARCH, frozen_stages=0)
    cfg = _optim_cfg('mask_rcnn/mask-rcnn_transnext_tiny.py')
    wrapper = build_optim_wrapper(model, cfg)
    names = {g['param_name'] for g in wrapper.optimizer.param_groups}
    assert 'backbone.patch_embed1.proj.weight' not in names
    assert 'backbone.patch_embed2.proj.weight' in names
