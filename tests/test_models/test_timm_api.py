"""timm API of the transnext_* models: local pretrained files, features_only, weight decay,
device / dtype (timm's own model tests run in test_timm_suite.py)."""
import pytest
import timm
import timm.optim
import torch
from mmengine.config import Config

import mmtransnext  # noqa: F401
from golden_testing import TOL, golden_arch
from mmtransnext.models.classifiers.transnext_cls import NO_WEIGHT_DECAY_KEYS
from mmtransnext.checkpoint.conversion import imagenet_to_mmpretrain

OPTIM_CFG = 'configs/_base_/transnext_optim.py'


@pytest.fixture(scope='module')
def golden_files(golden_cls, tmp_path_factory):
    """The golden classifier in the authors' layout and in the mmpretrain layout."""
    folder = tmp_path_factory.mktemp('ckpt')
    files = dict(authors=folder / 'authors.pth', mmpretrain=folder / 'mmpretrain.pth')
    torch.save({'model': golden_cls['state_dict']}, files['authors'])
    torch.save({'state_dict': imagenet_to_mmpretrain(golden_cls['state_dict'])},
               files['mmpretrain'])
    return files


def _golden_logits(model, golden_cls):
    case = golden_cls['cases'][0]  # 224, 'extrapolate'
    with torch.no_grad():
        err = (model.eval()(case['input']) - case['logits'].float()).abs().max().item()
    assert err <= TOL, err


@pytest.mark.parametrize('layout', ['authors', 'mmpretrain'])
def test_pretrained_file_and_checkpoint_path_load_both_layouts(golden_cls, golden_files, layout):
    arch = golden_arch(golden_cls['arch'])
    model = timm.create_model('transnext_micro', arch=arch, pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(golden_files[layout])))
    _golden_logits(model, golden_cls)
    model = timm.create_model('transnext_micro', arch=arch,
                              checkpoint_path=str(golden_files[layout]))
    _golden_logits(model, golden_cls)


def test_pretrained_file_into_a_new_head_and_features(golden_cls, golden_files):
    arch = golden_arch(golden_cls['arch'])
    overlay = dict(file=str(golden_files['authors']))
    model = timm.create_model('transnext_micro', arch=arch, pretrained=True, num_classes=5,
                              pretrained_cfg_overlay=overlay)
    assert model.head.out_features == 5
    assert torch.equal(model.block1[0].attn.temperature,
                       golden_cls['state_dict']['block1.0.attn.temperature'])
    features = timm.create_model('transnext_micro', arch=arch, pretrained=True,
                                 features_only=True, pretrained_cfg_overlay=overlay)
    assert torch.equal(features.model.norm4.weight, golden_cls['state_dict']['norm4.weight'])


def test_pretrained_without_a_file_says_how_to_pass_one():
    with pytest.raises(ValueError, match='pretrained_cfg_overlay=dict\\(file='):
        timm.create_model('transnext_tiny', pretrained=True)


def test_features_only_gives_nchw_maps_per_stage():
    model = timm.create_model('transnext_micro', features_only=True, out_indices=(1, 3)).eval()
    assert model.feature_info.channels() == [96, 384]
    assert model.feature_info.reduction() == [8, 32]
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 64, 96))
    assert [tuple(m.shape) for m in maps] == [(1, 96, 8, 12), (1, 384, 2, 3)]


def test_forward_features_is_the_last_map_and_head_pools_it():
    model = timm.create_model('transnext_micro', num_classes=3).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 384, 2, 2)
        pooled = model.forward_head(features, pre_logits=True)
        torch.testing.assert_close(pooled, features.mean((2, 3)))
        torch.testing.assert_close(model(x), model.head(pooled))


@pytest.mark.needs('timm', (1, 0, 12), 'timm.optim.param_groups_weight_decay')
def test_no_weight_decay_matches_the_mm_optimizer_config():
    custom_keys = Config.fromfile(OPTIM_CFG).transnext_paramwise_cfg['custom_keys']
    assert {k for k, v in custom_keys.items() if v.get('decay_mult') == 0.0} == \
        set(NO_WEIGHT_DECAY_KEYS)
    model = timm.create_model('transnext_micro_aaaa', num_classes=3)
    groups = timm.optim.param_groups_weight_decay(
        model, 0.05, no_weight_decay_list=model.no_weight_decay())
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for g in groups if g['weight_decay'] == 0. for p in g['params']}
    # mmengine: a custom key matches as a substring; norms and biases get no decay
    expected = {n for n, p in model.named_parameters()
                if any(k in n for k in NO_WEIGHT_DECAY_KEYS) or p.ndim <= 1}
    assert no_decay == expected
    assert {'block4.0.attn.temperature', 'block1.0.attn.cpb_fc1.weight',
            'block2.1.attn.relative_pos_bias_local'} <= no_decay
    assert 'block1.0.attn.learnable_tokens' not in no_decay


def test_builds_on_the_meta_device_and_in_a_dtype():
    model = timm.create_model('transnext_base', device='meta')
    assert {t.device.type for t in [*model.parameters(), *model.buffers()]} == {'meta'}
    with torch.device('meta'):
        model = timm.create_model('transnext_small', drop_path_rate=0.3)
    assert {p.device.type for p in model.parameters()} == {'meta'}
    model = timm.create_model('transnext_micro', dtype=torch.bfloat16, num_classes=3)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_data_config_follows_the_authors_evaluation():
    def data_config(name):
        return timm.data.resolve_model_data_config(timm.create_model(name, device='meta'))
    assert data_config('transnext_micro_aaaa')['input_size'] == (3, 256, 256)
    assert data_config('transnext_base.in1k_384')['input_size'] == (3, 384, 384)
    tiny = data_config('transnext_tiny')
    assert tiny['input_size'] == (3, 224, 224) and tiny['crop_pct'] == 0.875
    assert tiny['interpolation'] == 'bicubic'
