"""Checkpoints in the layouts of the authors' four downstream codebases load strictly.

tests/data/authors_checkpoints/<layout>.json writes each layout down: the container (the
``meta`` of mmdet 2.x / mmseg 0.x, or of mmengine for mmdet 3.0 / mmseg 1.x, next to
``state_dict``) and every key with its shape, for the test configs of tools_testing.py
with a TransNeXt of micro widths and one block per stage (the authors' names:
``backbone.block1.0.attn.cpb_fc1.weight`` ...). The test builds a checkpoint from it
(random values), loads it with mmengine's ``load_checkpoint(strict=True)``, loads its
backbone part through ``init_cfg`` Pretrained, and runs tools/test.py on it (``load_from``),
whose log must not report a key mismatch.
"""
import json
from functools import partial

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmtransnext.checkpoint.state_dict import load_backbone_checkpoint
from tools_testing import (MICRO_DIMS, ROOT, dino_config, mask2former_config, mask_rcnn_config,
                           test_tool, upernet_config, write_config)

LAYOUTS = ROOT / 'tests' / 'data' / 'authors_checkpoints'
# micro widths, one block per stage: every name of the authors' layout, few keys
ARCH = dict(_delete_=True, embed_dims=MICRO_DIMS, num_heads=[2, 4, 8, 16], depths=[1, 1, 1, 1],
            mlp_ratios=[8, 8, 4, 4], sr_ratios=[8, 4, 2, 1], window_size=[3, 3, 3, None])
# layout -> (test config of tools_testing, data fixture, task scope, metric)
CASES = {
    'mask-rcnn_mmdet2': (mask_rcnn_config, 'coco128', 'mmdet', 'coco/bbox_mAP'),
    'dino-5scale_mmdet3': (partial(dino_config, scales=5), 'coco128', 'mmdet',
                           'coco/bbox_mAP'),
    'upernet_mmseg0': (upernet_config, 'ade64', 'mmseg', 'mIoU'),
    'mask2former_mmseg1': (mask2former_config, 'ade64', 'mmseg', 'mIoU'),
}

# The authors' parameter names (../shared/docs/TRANSNEXT.md), written out independently of
# this package's modules: stage i+1 of the one-block-per-stage backbone.
_PAIR = ('weight', 'bias')
_AGGREGATED = [f'attn.{m}.{p}' for m in ('q', 'kv', 'proj', 'sr', 'norm', 'cpb_fc1', 'cpb_fc2')
               for p in _PAIR] + [f'attn.{n}' for n in (
                   'temperature', 'query_embedding', 'relative_pos_bias_local',
                   'learnable_tokens', 'learnable_bias')]
_MHSA = [f'attn.{m}.{p}' for m in ('qkv', 'proj', 'cpb_fc1', 'cpb_fc2') for p in _PAIR] + [
    'attn.temperature', 'attn.query_embedding']
_BLOCK = [f'{m}.{p}' for m in ('norm1', 'norm2', 'mlp.fc1', 'mlp.dwconv.dwconv', 'mlp.fc2')
          for p in _PAIR]
AUTHORS_BACKBONE_KEYS = {
    f'backbone.{key}' for i in range(1, 5) for key in (
        [f'patch_embed{i}.{m}.{p}' for m in ('proj', 'norm') for p in _PAIR]
        + [f'norm{i}.{p}' for p in _PAIR]
        + [f'block{i}.0.{k}' for k in _BLOCK + (_MHSA if i == 4 else _AGGREGATED)])}


def authors_checkpoint(layout, path):
    """A checkpoint in the written-down layout, random values (positive: BN variances)."""
    spec = json.loads((LAYOUTS / f'{layout}.json').read_text())
    gen = torch.Generator().manual_seed(0)
    state_dict = {key: torch.rand(shape, generator=gen) * 0.02
                  for key, shape in spec['state_dict'].items()}
    torch.save(dict(spec['container'], state_dict=state_dict), path)
    return spec


def one_block_config(make_config, tmp_path, data_root):
    base = make_config(tmp_path, data_root)
    return write_config(tmp_path / 'one_block_per_stage.py', '''
        _base_ = '{base}'
        model = dict(backbone=dict(arch={arch!r}))''', base=base, arch=ARCH)


@pytest.mark.parametrize('layout', list(CASES))
def test_authors_layout_loads_strictly(request, tmp_path, layout):
    make_config, fixture, scope, metric = CASES[layout]
    cfg_path = one_block_config(make_config, tmp_path, request.getfixturevalue(fixture))
    ckpt = tmp_path / f'{layout}.pth'
    spec = authors_checkpoint(layout, ckpt)
    backbone_keys = {k for k in spec['state_dict'] if k.startswith('backbone.')}
    assert backbone_keys == AUTHORS_BACKBONE_KEYS

    cfg = Config.fromfile(str(cfg_path))
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(cfg.model)
    load_checkpoint(model, str(ckpt), map_location='cpu', strict=True)
    expected = torch.load(ckpt, weights_only=True)['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key].to(value.dtype)), key
    load_backbone_checkpoint(model.backbone, str(ckpt))  # init_cfg Pretrained path

    metrics, proc = test_tool(cfg_path, ckpt, tmp_path / 'test')
    assert 'do not match exactly' not in proc.stdout
    assert metrics[metric] == metrics[metric]  # a number, not NaN
