"""Bad input gets an error that names the problem."""
import pytest
import torch

from mmtransnext.models import TransNeXt
from mmtransnext.checkpoint.state_dict import CheckpointMismatchError


def test_even_window_size():
    arch = dict(embed_dims=[48, 96], num_heads=[2, 4], depths=[1, 1], mlp_ratios=[8, 8],
                sr_ratios=[8, 1], window_size=[4, None])
    with pytest.raises(ValueError, match='odd'):
        TransNeXt(arch=arch)


def test_window_inconsistent_with_sr_ratio():
    arch = dict(embed_dims=[48, 96], num_heads=[2, 4], depths=[1, 1], mlp_ratios=[8, 8],
                sr_ratios=[8, 1], window_size=[3, 3])
    with pytest.raises(ValueError, match='sr_ratio 1'):
        TransNeXt(arch=arch)


def test_wrong_channels():
    model = TransNeXt(arch='micro')
    with pytest.raises(ValueError, match='3-channel input but got 4 channels'):
        model(torch.randn(1, 4, 64, 64))


def test_input_too_small():
    model = TransNeXt(arch='micro')
    with pytest.raises(ValueError, match='at least 32x32'):
        model(torch.randn(1, 3, 31, 64))


def test_aaaa_input_too_small_for_pooling():
    model = TransNeXt(arch='micro-aaaa')
    with pytest.raises(ValueError, match='smaller than sr_ratio 16'):
        model(torch.randn(1, 3, 32, 32))


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown TransNeXt arch 'tiny2'.*'micro'"):
        TransNeXt(arch='tiny2')


def test_misspelt_pos_bias():
    with pytest.raises(ValueError, match="pos_bias must be one of .*'extrapolate'"):
        TransNeXt(arch='micro', pos_bias='extrapolated')
    model = TransNeXt(arch='micro')
    with pytest.raises(ValueError, match='pos_bias must be one of'):
        model.pos_bias = 'interp'


def test_checkpoint_with_missing_backbone_keys(tmp_path):
    sd = TransNeXt(arch='micro').state_dict()
    del sd['block3.4.attn.cpb_fc1.weight']
    path = tmp_path / 'partial.pth'
    torch.save({'state_dict': sd}, path)
    model = TransNeXt(arch='micro', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError,
                       match=r'1 backbone weights missing.*block3\.4\.attn\.cpb_fc1\.weight'
                             r'.*transnext2mm'):
        model.init_weights()
