import pytest
import torch

from mmtransnext.models import ARCH_ZOO, TransNeXt, TransNeXtClassifier
from mmtransnext.models.layers import COORDINATE_CACHE, POS_BIAS_MODES

# Paper's parameter counts of the ImageNet models (1000-class head), in millions.
PAPER_PARAMS = {'micro': 12.8, 'tiny': 28.2, 'small': 49.7, 'base': 89.7}


def _expected_shapes(arch, height, width):
    shapes = []
    h, w = (height - 1) // 4 + 1, (width - 1) // 4 + 1  # 7x7 stride-4 conv, padding 3
    for i, dim in enumerate(ARCH_ZOO[arch]['embed_dims']):
        if i:
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1  # 3x3 stride-2 conv, padding 1
        shapes.append((1, dim, h, w))
    return shapes


@pytest.mark.parametrize('arch', sorted(ARCH_ZOO))
def test_variant_shapes_in_every_mode(arch):
    model = TransNeXt(arch=arch, img_size=224).eval()
    for height, width in [(224, 224), (250, 330)]:
        x = torch.randn(1, 3, height, width)
        for mode in POS_BIAS_MODES:
            model.pos_bias = mode
            with torch.no_grad():
                outs = model(x)
            assert [tuple(o.shape) for o in outs] == _expected_shapes(arch, height, width), \
                (arch, mode, height, width)
            assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('arch', sorted(PAPER_PARAMS))
def test_parameter_counts_match_paper(arch):
    import timm
    model = timm.create_model(f'transnext_{arch}', num_classes=1000)
    assert isinstance(model, TransNeXtClassifier) and model.head.out_features == 1000
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - PAPER_PARAMS[arch]) < 0.1, f'{arch}: {count:.3f}M'


def test_modes_differ_away_from_img_size_and_agree_at_it():
    torch.manual_seed(0)
    model = TransNeXt(arch='micro', img_size=224).eval()
    x224, x288 = torch.randn(1, 3, 224, 224), torch.randn(1, 3, 288, 288)
    outs = {}
    for mode in ('interpolate', 'extrapolate'):
        model.pos_bias = mode
        with torch.no_grad():
            outs[mode] = (model(x224)[2], model(x288)[2])
    assert torch.allclose(outs['interpolate'][0], outs['extrapolate'][0], atol=1e-5)
    assert not torch.allclose(outs['interpolate'][1], outs['extrapolate'][1], atol=1e-4)


def test_out_indices_select_stages():
    model = TransNeXt(arch='micro', out_indices=(1, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 96))
    assert [o.shape[1] for o in outs] == [96, 384]


def test_an_arch_dict_of_another_stage_count_halves_the_grid_per_stage():
    arch = dict(embed_dims=[8, 16, 16, 16, 16], num_heads=[1] * 5, depths=[1] * 5,
                mlp_ratios=[2] * 5, sr_ratios=[8, 4, 2, 1, 1],
                window_size=[3, 3, 3, None, None])
    model = TransNeXt(arch=arch, img_size=128, pretrain_size=128,
                      out_indices=(0, 1, 2, 3, 4)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 128, 128))
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 2]


def test_with_cp_gives_identical_outputs_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    results = []
    for with_cp in (False, True):
        torch.manual_seed(1)
        model = TransNeXt(arch='micro', with_cp=with_cp).train()
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()
        results.append(([o.detach() for o in outs],
                        {n: p.grad.clone() for n, p in model.named_parameters()}))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        assert torch.equal(a, b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], rtol=0, atol=1e-7), name


@pytest.mark.parametrize('frozen_stages', [-1, 0, 2])
def test_frozen_stages_freeze_exactly_their_stages(frozen_stages):
    model = TransNeXt(arch='micro', frozen_stages=frozen_stages)
    model.train()
    for i in range(4):
        frozen = i <= frozen_stages
        for name in (f'patch_embed{i + 1}', f'block{i + 1}', f'norm{i + 1}'):
            module = getattr(model, name)
            assert all(p.requires_grad != frozen for p in module.parameters()), name
            assert all(m.training != frozen for m in module.modules()), name
    outs = model(torch.randn(1, 3, 64, 64))
    sum(o.sum() for o in outs).backward()
    for name, p in model.named_parameters():
        stage = int(name.split('.')[0][-1]) - 1
        assert (p.grad is None) == (stage <= frozen_stages), name


@pytest.mark.parametrize('mode', POS_BIAS_MODES)
def test_gradients_reach_the_cpb_mlp(mode):
    torch.manual_seed(0)
    model = TransNeXt(arch='micro', img_size=64, pos_bias=mode).train()
    outs = model(torch.randn(1, 3, 96, 64))
    # a random projection: every output ends in a LayerNorm, so a loss like the sum of
    # squares is nearly constant and its gradients are rounding noise
    sum((o * torch.randn(o.shape)).sum() for o in outs).backward()
    cpb = [(n, p) for n, p in model.named_parameters() if '.cpb_fc' in n]
    assert len(cpb) == 4 * sum(ARCH_ZOO['micro']['depths'])
    plain_attention = [f'block{i + 1}.' for i, sr in enumerate(ARCH_ZOO['micro']['sr_ratios'])
                       if sr == 1]
    for name, p in cpb:
        assert p.grad is not None, name
        if name.endswith('cpb_fc2.bias') and name.startswith(tuple(plain_attention)):
            # plain attention adds this bias to every score of a head alike: softmax
            # cancels it, so its true gradient is zero
            continue
        assert p.grad.abs().sum() > 1e-3, (name, p.grad.abs().sum())


def test_position_bias_coordinates_are_cached_per_size():
    model = TransNeXt(arch='micro', pos_bias='extrapolate').eval()
    COORDINATE_CACHE.clear()
    builds0 = COORDINATE_CACHE.builds
    with torch.no_grad():
        model(torch.randn(1, 3, 96, 128))
        first = COORDINATE_CACHE.builds - builds0
        model(torch.randn(1, 3, 96, 128))
        second = COORDINATE_CACHE.builds - builds0 - first
        model(torch.randn(1, 3, 128, 96))
        third = COORDINATE_CACHE.builds - builds0 - first
    assert first == 4  # one grid per stage, shared by the stage's blocks
    assert second == 0
    assert third == 4


def test_inputs_not_multiple_of_32():
    model = TransNeXt(arch='micro').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 33, 47))
    assert [tuple(o.shape[-2:]) for o in outs] == [(9, 12), (5, 6), (3, 3), (2, 2)]
