"""The log-CPB MLP as evaluated (fc1 per axis; the pairs through the fused op, or the torch
path's chunked rows recomputed in backward) equals the plain cpb_fc2(ReLU(cpb_fc1(
coordinates))) on the full coordinate grid, values and gradients, with one chunk and with
many. In float64: the two orders of summation round differently, and in float32 a ReLU input
a few ulps from zero can fall on either side."""
import pytest
import torch
import torch.nn.functional as F

from mmtransnext.models.layers import position_bias
from mmtransnext.ops import cpb_mlp
from mmtransnext.models.layers.position_bias import (COORDINATE_CACHE, LogCPB,
                                                    PositionBiasSettings)


@pytest.mark.parametrize('impl, chunk_elements', [('auto', None), ('torch', 1 << 21),
                                                   ('torch', 512 * 7)])
def test_cpb_table_matches_the_plain_mlp(impl, chunk_elements, monkeypatch):
    monkeypatch.setenv('MMTRANSNEXT_OPS', impl)
    if chunk_elements:
        monkeypatch.setattr(cpb_mlp, 'MLP_CHUNK_ELEMENTS', chunk_elements)
    torch.manual_seed(0)
    cpb = LogCPB(num_heads=3, sr_ratio=4, bias_settings=PositionBiasSettings(
        img_size=(96, 128), pretrain_size=224, stride=8)).double()
    vh, vw, _, _ = COORDINATE_CACHE.get((12, 16), (3, 4), cpb.pretrain_tokens,
                                        torch.device('cpu'))
    vh, vw = vh.double(), vw.double()
    params = list(cpb.parameters())

    table = cpb.cpb_table(vh, vw)
    grads = torch.autograd.grad(table.sin().sum(), params)

    coords = torch.stack(torch.meshgrid(vh, vw, indexing='ij'), dim=-1)
    plain = cpb.cpb_fc2(F.relu(cpb.cpb_fc1(coords))).permute(2, 0, 1)
    plain_grads = torch.autograd.grad(plain.sin().sum(), params)

    assert table.shape == (3, len(vh), len(vw))
    assert table.dtype == torch.float64
    torch.testing.assert_close(table, plain, rtol=1e-10, atol=1e-10)
    for g, p in zip(grads, plain_grads):
        torch.testing.assert_close(g, p, rtol=1e-10, atol=1e-10)


# -- 'interpolate': the per-axis resize equals resizing the full img_size bias -----------------

def _reference_bias(cpb, height, width):
    """The bias as built before the per-axis resize: gathered at full size on the img_size
    grid ('interpolate'; else on the input's grid), then F.interpolate over the key axes and
    over the query axes."""
    q1, k1 = (height, width), cpb.key_grid(height, width)
    q0, k0 = q1, k1
    if cpb.pos_bias == 'interpolate':
        q0 = cpb.bias_settings.img_grid
        k0 = q0 if cpb.sr_ratio == 1 else (q0[0] // cpb.sr_ratio, q0[1] // cpb.sr_ratio)
    vh, vw, ih, iw = COORDINATE_CACHE.get(q0, k0, cpb.pretrain_tokens, torch.device('cpu'))
    table = cpb.cpb_table(vh, vw)
    heads = table.shape[0]
    bias = table.index_select(2, iw).index_select(1, ih)
    bias = bias.view(heads, q0[0], k0[0], q0[1], k0[1]).permute(0, 1, 3, 2, 4)
    bias = bias.reshape(heads, q0[0] * q0[1], k0[0] * k0[1])
    if k0 != k1:
        bias = F.interpolate(bias.reshape(1, -1, *k0), size=k1, mode='bilinear',
                             align_corners=False).view(heads, q0[0] * q0[1], -1)
    if q0 != q1:
        n_k = bias.shape[-1]
        bias = bias.transpose(1, 2).reshape(1, heads * n_k, *q0)
        bias = F.interpolate(bias, size=q1, mode='bilinear', align_corners=False)
        bias = bias.view(heads, n_k, -1).transpose(1, 2)
    return bias


@pytest.mark.parametrize('sr_ratio, img_size, grids, mode', [
    (4, (96, 136), [(25, 31), (9, 13), (12, 21), (17, 8)], 'interpolate'),  # grid 12x17
    (2, (56, 72), [(7, 9), (13, 5), (4, 19)], 'interpolate'),  # grid 7x9 (itself), keys 3x4
    (1, (72, 56), [(9, 7), (13, 5), (4, 11), (23, 17)], 'interpolate'),  # keys = queries
    (4, (96, 136), [(25, 31), (9, 13)], 'extrapolate'),
    (1, (72, 56), [(13, 5)], 'extrapolate'),
    (2, (96, 136), [(25, 31), (5, 6)], 'linear'),
])
def test_interpolated_bias_equals_resizing_the_full_bias(sr_ratio, img_size, grids, mode):
    torch.manual_seed(0)
    cpb = LogCPB(num_heads=3, sr_ratio=sr_ratio, bias_settings=PositionBiasSettings(
        img_size=img_size, pretrain_size=224, mode=mode, stride=8)).double()
    params = list(cpb.parameters())
    for height, width in grids:
        bias = cpb.position_bias(height, width)
        ref = _reference_bias(cpb, height, width)
        assert bias.shape == ref.shape == (3, height * width, ref.shape[-1])
        torch.testing.assert_close(bias, ref, rtol=1e-12, atol=1e-12)
        weights = torch.randn_like(ref)
        grads = torch.autograd.grad((bias * weights).sum(), params)
        ref_grads = torch.autograd.grad((ref * weights).sum(), params)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_resized_rows_are_the_distinct_weighted_sums():
    """A y resize (2x: the multi-scale test's 1024 from 512) keeps only the distinct rows:
    far fewer than the (query row, key row) pairs, each pair pointing at a row equal to its
    own weighted sum of 4 table rows."""
    cpb = LogCPB(num_heads=2, sr_ratio=8, bias_settings=PositionBiasSettings(
        img_size=256, pretrain_size=224, mode='interpolate', stride=4)).double()
    with torch.no_grad():
        table, rows = cpb.position_bias_rows(128, 128)
    assert rows.shape == (128 * 16,)
    assert table.shape[1] < rows.numel() / 2  # 728 of 2048 here; 1528 of 8192 at 1024
    assert int(rows.max()) == table.shape[1] - 1 and int(rows.min()) == 0
    ref = _reference_bias(cpb, 128, 128)
    torch.testing.assert_close(position_bias.expand_bias(table, rows, 128, 128), ref,
                               rtol=1e-12, atol=1e-12)


def test_grids_first_seen_under_inference_mode_serve_training():
    """Coordinates and resized rows cached under torch.inference_mode are inference tensors,
    which autograd cannot save: training on the same grid afterwards gets its own."""
    cpb = LogCPB(num_heads=2, sr_ratio=2, bias_settings=PositionBiasSettings(
        img_size=64, pretrain_size=224, mode='interpolate', stride=8))
    with torch.inference_mode():
        cpb.position_bias(12, 12)  # a y resize: coordinates and distinct rows cached
    cpb.position_bias(12, 12).sum().backward()
    assert cpb.cpb_fc1.weight.grad.abs().sum() > 0


# -- inference cache of the table --------------------------------------------------------------

@pytest.fixture
def mlp_runs(monkeypatch):
    runs = []
    original = LogCPB.cpb_table

    def counting(self, vh, vw):
        runs.append(self)
        return original(self, vh, vw)

    monkeypatch.setattr(LogCPB, 'cpb_table', counting)
    return runs


def _cpb(mode='extrapolate'):
    torch.manual_seed(0)
    return LogCPB(num_heads=2, sr_ratio=2, bias_settings=PositionBiasSettings(
        img_size=64, pretrain_size=224, mode=mode, stride=8))


def _uncached(cpb, height, width):
    with torch.enable_grad():
        return cpb.position_bias(height, width).detach()


def test_multi_scale_flip_inference_runs_the_mlp_once_per_grid(mlp_runs):
    from mmtransnext.models import TransNeXt
    model = TransNeXt(arch='micro', img_size=160, pos_bias='extrapolate').eval()
    n_modules = sum(isinstance(m, LogCPB) for m in model.modules())
    scales = [(64, 64), (96, 64), (64, 96)]
    with torch.no_grad():
        for _ in range(2):  # two images
            for h, w in scales:
                x = torch.randn(1, 3, h, w)
                for image in (x, x.flip(-1)):
                    model(image)
    assert len(mlp_runs) == n_modules * len(scales)
    # interpolate: one grid (img_size, not among the scales) for every input size
    mlp_runs.clear()
    model.pos_bias = 'interpolate'
    with torch.no_grad():
        for h, w in scales:
            model(torch.randn(1, 3, h, w))
    assert len(mlp_runs) == n_modules
    # training (gradients wanted) never uses the cache
    mlp_runs.clear()
    model.train()
    model(torch.randn(1, 3, 64, 64))
    model(torch.randn(1, 3, 64, 64))
    assert len(mlp_runs) == 2 * n_modules


def test_cache_follows_in_place_parameter_changes(mlp_runs):
    cpb = _cpb()
    with torch.no_grad():
        first = cpb.position_bias(8, 12)
        assert torch.equal(cpb.position_bias(8, 12), first) and len(mlp_runs) == 1
        cpb.cpb_fc2.weight.mul_(2)  # an in-place change of one parameter
        changed = cpb.position_bias(8, 12)
    assert len(mlp_runs) == 2 and not torch.allclose(changed, first)
    torch.testing.assert_close(changed, _uncached(cpb, 8, 12), rtol=0, atol=0)


def test_cache_follows_load_state_dict_and_optimizer_steps(mlp_runs):
    cpb, other = _cpb(), _cpb()
    with torch.no_grad():
        other.cpb_fc1.weight.normal_()
        before = cpb.position_bias(9, 10)
    cpb.load_state_dict(other.state_dict())
    with torch.no_grad():
        loaded = cpb.position_bias(9, 10)
    torch.testing.assert_close(loaded, _uncached(other, 9, 10), rtol=0, atol=0)
    assert not torch.allclose(loaded, before)

    optimizer = torch.optim.AdamW(cpb.parameters(), lr=0.1)
    cpb.position_bias(9, 10).square().sum().backward()
    optimizer.step()
    with torch.no_grad():
        stepped = cpb.position_bias(9, 10)
    torch.testing.assert_close(stepped, _uncached(cpb, 9, 10), rtol=0, atol=0)
    assert not torch.allclose(stepped, loaded)


def test_cache_follows_dtype_and_is_bounded(mlp_runs):
    cpb = _cpb()
    with torch.no_grad():
        cpb.position_bias(8, 8)
        cpb.double()
        bias = cpb.position_bias(8, 8)
        assert bias.dtype == torch.float64 and len(mlp_runs) == 2
        for side in range(8, 8 + 2 * position_bias.TABLE_CACHE_SIZE):
            cpb.position_bias(side, side)
    assert len(cpb._table_cache) == position_bias.TABLE_CACHE_SIZE
    cpb.clear_bias_cache()
    assert not cpb._table_cache


def test_settings_object_is_required_and_validated():
    with pytest.raises(TypeError, match='PositionBiasSettings'):
        LogCPB(num_heads=2, sr_ratio=2, bias_settings=dict(img_size=64, pretrain_size=224))
    with pytest.raises(ValueError, match='pos_bias must be one of'):
        PositionBiasSettings(img_size=64, pretrain_size=224, mode='interp')
    with pytest.raises(ValueError, match='need at least 2'):
        PositionBiasSettings(img_size=64, pretrain_size=32, stride=32)
    cpb = _cpb()
    cpb.pos_bias = 'linear'
    assert cpb.bias_settings.mode == 'linear' and cpb.key_grid(20, 20) == (7, 7)


def test_copies_start_with_an_empty_cache():
    import copy
    import pickle
    cpb = _cpb()
    with torch.no_grad():
        bias = cpb.position_bias(8, 8)
    assert len(cpb._table_cache) == 1
    for clone in (copy.deepcopy(cpb), pickle.loads(pickle.dumps(cpb))):
        assert not clone._table_cache
        with torch.no_grad():
            torch.testing.assert_close(clone.position_bias(8, 8), bias, rtol=0, atol=0)
