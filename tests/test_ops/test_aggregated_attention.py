"""The fused aggregated-attention op (CPU) against the torch path (the reference).

Gradients in float64 (gradcheck) at borders, odd grids and windows 3 / 5, a fixed pooled grid
(linear mode), a bias row table whose rows repeat; float32 agreement of the output and all
ten gradients; bitwise-deterministic
backward (repeated runs and 1 vs 2 threads); opcheck; the dispatch rules; bad input (the
Python entry, the fake kernel and the C++ op give the same message); non-finite inputs.
"""
import pytest
import torch

from mmtransnext.ops import AttentionInputs, aggregated_attention
from mmtransnext.ops import attention as agg_module
from mmtransnext.ops.attention import aggregated_attention_torch, use_fused
from ops_testing import make_attention_inputs, requires_ext

pytestmark = requires_ext

# (B, heads, H, W, head_dim, window, pooled grid): odd grids with borders, window 5 on a 3-row
# map, a pooled grid that does not divide the map (linear mode's fixed pool), one query block
# boundary (N > 64) and several backward chunks (N = 700).
SHAPES = [(2, 2, 5, 7, 3, 3, (2, 3)), (1, 3, 7, 5, 4, 5, (3, 2)), (2, 1, 3, 5, 2, 5, (1, 1)),
          (1, 2, 9, 11, 8, 3, (3, 3)), (2, 3, 28, 25, 24, 3, (7, 6))]


def fused(a, H, W, ks, pool_hw):
    return torch.ops.mmtransnext.aggregated_attention(*a, H, W, ks, *pool_hw)[0]


# fast_mode: gradcheck of random projections (full Jacobians of the ten inputs take minutes)
@pytest.mark.parametrize('B,heads,H,W,d,ks,pool_hw,fast', [
    (1, 2, 5, 7, 2, 3, (2, 3), True), (2, 1, 5, 7, 2, 5, (2, 2), True),
    (1, 1, 3, 3, 2, 5, (3, 3), False)])
def test_gradcheck(B, heads, H, W, d, ks, pool_hw, fast):
    a = make_attention_inputs(B, heads, H, W, d, ks, pool_hw, torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: fused(t, H, W, ks, pool_hw), tuple(a),
                                    fast_mode=fast)


@pytest.mark.parametrize('B,heads,H,W,d,ks,pool_hw', SHAPES)
def test_matches_torch_path(B, heads, H, W, d, ks, pool_hw):
    a = make_attention_inputs(B, heads, H, W, d, ks, pool_hw, requires_grad=True)
    ref = aggregated_attention_torch(a, H, W, ks)
    out, lse = torch.ops.mmtransnext.aggregated_attention(*a, H, W, ks, *pool_hw)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert lse.shape == (B, heads, H * W) and lse.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    for name, got, want in zip(AttentionInputs._fields,
                               torch.autograd.grad(out, a.floats(), grad),
                               torch.autograd.grad(ref, a.floats(), grad)):
        # the rpb / learnable / pooled gradients sum B*N terms
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize('dtype,tol', [(torch.bfloat16, 3e-2), (torch.float16, 1e-2)])
def test_low_precision(dtype, tol):
    """16-bit inputs (fp32 accumulation) against fp32 on the same rounded inputs."""
    H, W, ks, pool_hw = 9, 11, 3, (3, 3)
    a = make_attention_inputs(2, 2, H, W, 24, ks, pool_hw, dtype)
    out = fused(a, H, W, ks, pool_hw)
    assert out.dtype == dtype
    ref = aggregated_attention_torch(a.with_floats(*[t.float() for t in a.floats()]), H, W, ks)
    torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_runs_the_float_kernels(dtype):
    """16-bit inputs are widened once and run the float kernels: output and gradients are
    bitwise the float op's on the widened inputs, rounded to the inputs' dtype."""
    H, W, ks, pool_hw = 9, 11, 3, (3, 3)
    a = make_attention_inputs(2, 2, H, W, 24, ks, pool_hw, dtype, requires_grad=True)
    wide = a.with_floats(*[t.detach().float().requires_grad_() for t in a.floats()])
    grad = torch.randn(2, 2, H * W, 24, generator=torch.Generator().manual_seed(1))
    out, out_wide = fused(a, H, W, ks, pool_hw), fused(wide, H, W, ks, pool_hw)
    assert torch.equal(out, out_wide.to(dtype))
    grads = torch.autograd.grad(out, a.floats(), grad.to(dtype))
    grads_wide = torch.autograd.grad(out_wide, wide.floats(), grad.to(dtype).float())
    for name, g, g_wide in zip(AttentionInputs._fields, grads, grads_wide):
        assert g.dtype == dtype and torch.equal(g, g_wide.to(dtype)), name


def test_backward_bitwise_deterministic():
    """No atomics, fixed summation order: repeated runs and 1 vs 2 threads give equal bits."""
    H, W, ks, pool_hw = 28, 25, 3, (7, 6)  # 11 query blocks: several chunks per head
    a = make_attention_inputs(2, 3, H, W, 24, ks, pool_hw, requires_grad=True)
    grad = torch.randn(2, 3, H * W, 24, generator=torch.Generator().manual_seed(3))
    threads = torch.get_num_threads()
    runs = []
    try:
        for n in (threads, threads, 1, 2):
            torch.set_num_threads(n)
            runs.append(torch.autograd.grad(fused(a, H, W, ks, pool_hw), a.floats(), grad))
    finally:
        torch.set_num_threads(threads)
    for run in runs[1:]:
        for name, x, y in zip(AttentionInputs._fields, runs[0], run):
            assert torch.equal(x, y), name


@pytest.mark.needs('torch', (2, 4), 'torch.library.opcheck')
def test_opcheck():
    H, W, ks, pool_hw = 5, 6, 3, (2, 3)
    a = make_attention_inputs(2, 2, H, W, 4, ks, pool_hw, requires_grad=True)
    ops = torch.ops.mmtransnext
    torch.library.opcheck(ops.aggregated_attention.default, (*a, H, W, ks, *pool_hw))
    out, lse = ops.aggregated_attention(*a, H, W, ks, *pool_hw)
    torch.library.opcheck(ops.aggregated_attention_backward.default,
                          (torch.randn_like(out), lse.detach(), *[t.detach() for t in a], H, W,
                           ks, *pool_hw))


def test_meta_tensors():
    a = make_attention_inputs(2, 3, 4, 5, 8, 3, (2, 2))
    meta = AttentionInputs(*[t.to('meta') for t in a])
    out, lse = torch.ops.mmtransnext.aggregated_attention(*meta, 4, 5, 3, 2, 2)
    assert out.device.type == 'meta' and out.shape == (2, 3, 20, 8) and lse.shape == (2, 3, 20)
    assert aggregated_attention(meta, 4, 5, 3, (2, 2)).shape == (2, 3, 20, 8)


# -- dispatch ---------------------------------------------------------------------------------

@pytest.fixture
def torch_calls(monkeypatch):
    calls = []
    ref = agg_module.aggregated_attention_torch

    def spy(*args, **kwargs):
        calls.append(1)
        return ref(*args, **kwargs)

    monkeypatch.setattr(agg_module, 'aggregated_attention_torch', spy)
    return calls


def _dispatch_args():
    return make_attention_inputs(1, 2, 5, 6, 4, 3, (2, 3)), 5, 6, 3, (2, 3)


@pytest.mark.parametrize('impl', ['auto', 'ext'])
def test_dispatch_uses_fused_op(monkeypatch, torch_calls, impl):
    monkeypatch.setenv('MMTRANSNEXT_OPS', impl)
    a, H, W, ks, pool_hw = _dispatch_args()
    out = aggregated_attention(a, H, W, ks, pool_hw, torch.nn.Dropout(0.1).eval())
    assert torch_calls == []
    torch.testing.assert_close(out, aggregated_attention_torch(a, H, W, ks))


@pytest.mark.parametrize('env', [('MMTRANSNEXT_OPS', 'torch'), ('MMTRANSNEXT_FUSED', '0')])
def test_dispatch_switches(monkeypatch, torch_calls, env):
    monkeypatch.setenv(*env)
    aggregated_attention(*_dispatch_args())
    assert torch_calls == [1]


def test_attention_dropout_takes_torch_path(torch_calls):
    """Training with attn_drop > 0: the torch path applies dropout to both softmax parts."""
    a, H, W, ks, pool_hw = _dispatch_args()
    torch.manual_seed(0)
    out = aggregated_attention(a, H, W, ks, pool_hw, torch.nn.Dropout(0.5).train())
    assert torch_calls == [1]
    torch.manual_seed(0)
    again = aggregated_attention_torch(a, H, W, ks, torch.nn.Dropout(0.5).train())
    assert torch.equal(out, again)
    assert not torch.allclose(out, aggregated_attention_torch(a, H, W, ks))


def test_module_attention_dropout(torch_calls):
    """AggregatedAttention with attn_drop > 0 takes the torch path in training only."""
    from mmtransnext.models.layers import AggregatedAttention, PositionBiasSettings
    settings = PositionBiasSettings(img_size=(40, 56), pretrain_size=224, mode='extrapolate',
                                    stride=8)
    attn = AggregatedAttention(dim=16, num_heads=2, sr_ratio=2, window_size=3,
                               bias_settings=settings, attn_drop=0.5)
    x = torch.randn(1, 35, 16)
    attn.train()
    attn(x, 5, 7)
    assert torch_calls == [1]
    attn.eval()
    with torch.no_grad():
        out = attn(x, 5, 7)
    assert torch_calls == [1]
    with torch.no_grad():
        ref = attn.proj(aggregated_attention_torch(
            attn.attention_inputs(x, 5, 7)[0], 5, 7, 3).transpose(1, 2).reshape(1, 35, 16))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_large_pooled_grid_takes_torch_path(torch_calls):
    """Linear mode's fixed 7x7 pool on a 5x6 map: the torch path pools up, as the reference."""
    a = make_attention_inputs(1, 2, 5, 6, 4, 3, (7, 7))
    aggregated_attention(a, 5, 6, 3, (7, 7))
    assert torch_calls == [1]
    assert not use_fused(a.q, 5, 6, (7, 7))


def test_tracing_takes_torch_path():
    a, H, W, ks, pool_hw = _dispatch_args()
    seen = []

    def f(x):
        seen.append(use_fused(x, H, W, pool_hw))
        return x

    torch.fx.symbolic_trace(f)
    torch.jit.trace(f, a.q, check_trace=False)
    assert seen == [False, False]
    assert use_fused(a.q, H, W, pool_hw)


# -- bad input --------------------------------------------------------------------------------

def _bad_cases():
    a = make_attention_inputs(2, 2, 5, 6, 4, 3, (2, 3))
    geo = (5, 6, 3, 2, 3)
    return {
        'pooled grid larger': (a, (5, 6, 3, 6, 3), r'pooled grid 6 x 3 is larger than the query '
                                                   r'grid 5 x 6'),
        'empty batch': (AttentionInputs(*[t[:0] if t.dim() == 4 else t for t in a]), geo,
                        r'empty batch'),
        'heads of rpb': (a._replace(rpb=a.rpb[:1]), geo, r'rpb must have shape'),
        'heads of pos_table': (a._replace(pos_table=a.pos_table[:1]), geo,
                               r'pos_table must have shape'),
        'columns of pos_table': (a._replace(pos_table=a.pos_table[..., 1:]), geo,
                                 r'pos_table must have shape .2, \d+, 18.'),
        'pos_rows dtype': (a._replace(pos_rows=a.pos_rows.int()), geo,
                           r'pos_rows must be an int64 tensor'),
        'pos_rows length': (a._replace(pos_rows=a.pos_rows[1:]), geo,
                            r'pos_rows must have shape .10,?.'),
        'head_dim of key': (a._replace(key=a.key[..., :3]), geo, r'key must have shape'),
        'P of value_pool': (a._replace(value_pool=a.value_pool[:, :, :5]), geo,
                            r'value_pool must have shape'),
        'tokens': (a, (5, 5, 3, 2, 3), r'H\*W = 5\*5 = 25 but the tensors hold N = 30'),
        'learnable_tokens': (a._replace(learnable_tokens=a.learnable_tokens.transpose(1, 2)),
                             geo, r'learnable_tokens must have shape'),
        'even window': (a, (5, 6, 4, 2, 3), r'odd'),
        'mixed dtypes': (a._replace(value=a.value.double()), geo, r'mixed dtypes'),
    }


ERRORS = (ValueError, TypeError, RuntimeError)


@pytest.mark.parametrize('where', ['op', 'meta', 'dispatch'])
@pytest.mark.parametrize('case', list(_bad_cases()))
def test_bad_input(case, where, monkeypatch):
    a, geo, msg = _bad_cases()[case]
    with pytest.raises(ERRORS, match=msg):
        if where == 'op':
            torch.ops.mmtransnext.aggregated_attention(*a, *geo)
        elif where == 'meta':  # the fake kernel
            torch.ops.mmtransnext.aggregated_attention(*[t.to('meta') for t in a], *geo)
        else:  # the Python entry checks before any kernel runs
            from mmtransnext.ops.checks import check_aggregated_attention
            check_aggregated_attention('aggregated_attention', a, *geo)


def test_pos_rows_out_of_range():
    """The row indices are read by the kernel only: it checks them before any work."""
    a = make_attention_inputs(1, 2, 5, 6, 4, 3, (2, 3))
    rows = a.pos_rows.clone()
    rows[3] = a.pos_table.shape[1]
    with pytest.raises(RuntimeError, match=r'pos_rows holds values outside \[0, R\)'):
        torch.ops.mmtransnext.aggregated_attention(*a._replace(pos_rows=rows), 5, 6, 3, 2, 3)
    with pytest.raises(RuntimeError, match=r'pos_rows holds values outside'):
        aggregated_attention(a._replace(pos_rows=-rows), 5, 6, 3, (2, 3))


def test_non_finite_inputs_propagate_like_torch_path():
    """Documented behaviour: no check; a NaN / inf reaching a query's logits gives that query
    a NaN output, exactly where the torch path has one; other queries are unaffected."""
    H, W, ks, pool_hw = 5, 7, 3, (2, 3)
    a = make_attention_inputs(1, 2, H, W, 4, ks, pool_hw)
    # one table row per (query row, key row): the inf below reaches query 20 only
    table = torch.randn(2, H * pool_hw[0], W * pool_hw[1])
    a = a._replace(pos_table=table, pos_rows=torch.arange(H * pool_hw[0]))
    q_scaled = a.q_scaled.clone()
    q_scaled[0, 0, 3] = float('nan')
    # query 20 = (2, 6), pooled key 2 = (0, 2): row 2 * 2 + 0, column 6 * 3 + 2
    table[1, 4, 20] = float('inf')
    bad = a._replace(q_scaled=q_scaled)
    out, ref = fused(bad, H, W, ks, pool_hw), aggregated_attention_torch(bad, H, W, ks)
    assert torch.equal(out.isnan(), ref.isnan())
    assert out[0, 0, 3].isnan().all() and out[0, 1, 20].isnan().all()
    assert out.isnan().sum() == 2 * 4
    finite = ~ref.isnan()
    torch.testing.assert_close(out[finite], ref[finite], rtol=1e-5, atol=1e-5)


def test_identity_rows_as_none():
    """A table with one row per (query row, key row) travels with pos_rows None (the API
    allows it; the model always passes its row index): the torch path permutes it once,
    the fused op gets 0, 1, 2, ..."""
    from mmtransnext.ops.bias_rows import expand_bias
    H, W, ks, pool_hw = 5, 7, 3, (2, 3)
    a = make_attention_inputs(1, 2, H, W, 4, ks, pool_hw)
    table = torch.randn(2, H * pool_hw[0], W * pool_hw[1])
    rows = torch.arange(H * pool_hw[0])
    assert torch.equal(expand_bias(table, None, H, W), expand_bias(table, rows, H, W))
    a = a._replace(pos_table=table, pos_rows=None)
    torch.testing.assert_close(aggregated_attention(a, H, W, ks, pool_hw),
                               aggregated_attention_torch(a, H, W, ks), rtol=1e-5, atol=1e-5)
