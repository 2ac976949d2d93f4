"""The Triton kernels of the fused aggregated attention, in Triton's interpreter on CPU tensors.

triton reads TRITON_INTERPRET when it is imported, so the interpreter tests run in a child
pytest process started with it (``test_interpreter_run`` here; the ``in_child`` tests are
skipped in the parent and run there). Against the torch path: values and all ten gradients,
fp32 within 1e-4, fp16 / bf16 within parity.TOLS (1e-2 / 3e-2 of 1 + |reference|, 10x for
gradients summed over tokens); the three position-bias modes as the model builds them
(interpolate with a y resize: the distinct resized rows), odd maps, a map smaller than one block, small
blocks (queries not a multiple of the block, several pooled steps), the pooled grid of every
stage, batch and heads > 1; the int64 offsets at the largest input; the dispatch and the
run-time self-check (an injected faulty kernel falls back with a warning).
Without triton >= 3.0 (e.g. torch 2.0's triton 2.0) the kernel tests skip, naming the version;
the version gate, the fallback where triton is too old and the window kernels' self-check
run everywhere.
"""
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import torch

from mmtransnext.ops import self_check, triton_support
from mmtransnext.ops.attention import (AttentionInputs, aggregated_attention,
                                       aggregated_attention_torch, fused_impl)
from mmtransnext.ops.parity import check_case
from mmtransnext.ops.testing import attention_inputs
from mmtransnext.ops.torch_reference import torch_reference
from ops_testing import requires_ext

REASON = triton_support.unavailable_reason()
requires_triton = pytest.mark.skipif(REASON is not None, reason=f'{REASON}')
INTERPRETING = triton_support.interpreting()
in_child = pytest.mark.skipif(
    not INTERPRETING, reason='runs in the TRITON_INTERPRET=1 child process '
                             '(test_interpreter_run)')
in_parent = pytest.mark.skipif(INTERPRETING, reason='runs in the parent process')
ROOT = Path(__file__).resolve().parents[2]
TRITON = 'aggregated_attention_triton'


@in_parent
@requires_triton
def test_interpreter_run():
    """Every in_child test, in a pytest process with TRITON_INTERPRET=1."""
    env = dict(os.environ, TRITON_INTERPRET='1', MMTRANSNEXT_FUSED='1')
    proc = subprocess.run([sys.executable, '-m', 'pytest', __file__, '-q', '-p',
                           'no:cacheprovider', '-x'], capture_output=True, text=True, env=env,
                          cwd=str(ROOT))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert ' passed' in proc.stdout and ' failed' not in proc.stdout


@in_parent
def test_version_gate(monkeypatch):
    """triton older than 3.0 (torch 2.0 ships 2.0) or missing: not offered, and why."""
    monkeypatch.setattr(triton_support, 'triton_version', lambda: (2, 0))
    triton_support.unavailable_reason.cache_clear()
    try:
        assert 'triton 2.0 is too old' in triton_support.unavailable_reason()
        assert '>= 3.0' in triton_support.unavailable_reason()
        monkeypatch.setattr(triton_support, 'triton_version', lambda: None)
        triton_support.unavailable_reason.cache_clear()
        assert 'triton is not installed' in triton_support.unavailable_reason()
    finally:
        triton_support.unavailable_reason.cache_clear()


@in_parent
def test_asked_for_but_not_offered(monkeypatch):
    """MMTRANSNEXT_FUSED=triton where triton is too old: one warning with the reason, and
    the next implementation down serves."""
    monkeypatch.setenv('MMTRANSNEXT_FUSED', 'triton')
    monkeypatch.setattr(triton_support, 'serves', lambda t: True)  # as for a CUDA tensor
    monkeypatch.setattr(triton_support, 'unavailable_reason', lambda: 'triton 2.0 is too old')
    monkeypatch.setattr(triton_support, '_warned', [False])
    a = attention_inputs(1, 2, 5, 6, 4, 3, (2, 3))
    with pytest.warns(UserWarning, match='MMTRANSNEXT_FUSED=triton, but triton 2.0 is too old'):
        assert fused_impl(a.q, 5, 6, (2, 3)) != 'triton'
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert fused_impl(a.q, 5, 6, (2, 3)) != 'triton'


def _spill_bytes(kernel, arch):
    """Bytes of register spill stores ptxas reports for a compiled kernel, or None where
    triton's ptxas cannot be found (its internal API changes between versions)."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas
        ptxas = get_ptxas(arch).path
    except Exception:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        ptx = Path(tmp) / 'kernel.ptx'
        ptx.write_text(kernel.asm['ptx'])
        gpu = f'sm_{arch}a' if arch >= 90 else f'sm_{arch}'
        out = subprocess.run([ptxas, '-v', f'--gpu-name={gpu}', str(ptx), '-o',
                              str(Path(tmp) / 'kernel.cubin')], capture_output=True, text=True)
    found = re.search(r'(\d+) bytes spill stores', out.stdout + out.stderr)
    return int(found.group(1)) if found else None


@in_parent
@requires_triton
@pytest.mark.parametrize('arch,dtype', [(80, torch.float32), (80, torch.bfloat16),
                                        (90, torch.float32), (90, torch.float16)], ids=str)
def test_kernels_compile_for_gpus(arch, dtype):
    """Both kernels compile to cubin for A100 (sm_80) and H100 (sm_90) with triton's own
    compiler and ptxas (no GPU: compiled, not run), without register spills at TransNeXt's
    head_dim. The interpreter does not check what only the compiler does (types, layouts,
    shared memory, registers)."""
    from mmtransnext.ops.aggregated_attention_triton import compile_for
    try:
        kernels = compile_for(arch, dtype)
    except RuntimeError as e:  # no bundled ptxas / CUDA backend in this triton build
        if 'ptxas' in str(e) or 'backend' in str(e).lower():
            pytest.skip(f'triton cannot compile for CUDA here: {e}')
        raise
    for which, kernel in kernels.items():
        assert kernel.asm.get('cubin') and kernel.metadata.shared <= 96 * 1024
        assert _spill_bytes(kernel, arch) in (0, None), which


# -- in the interpreter -------------------------------------------------------------------------

@pytest.fixture
def small_blocks(monkeypatch):
    """16 queries and 16 pooled keys per step: partial blocks and several pooled steps."""
    from mmtransnext.ops import aggregated_attention_triton as kernels
    monkeypatch.setitem(kernels.BLOCKS, 'interpreter', (16, 16, 4))


def triton_call(a, H, W, ks, pool_hw):
    from mmtransnext.ops.aggregated_attention_triton import aggregated_attention_triton
    return aggregated_attention_triton(tuple(a), H, W, ks, *pool_hw)


def assert_matches_torch(a, H, W, ks, pool_hw, call=triton_call, tol=1e-4):
    """Values and the ten gradients in fp32 against the torch path: |d| <= tol (1 + |ref|)."""
    a = a.with_floats(*[t.detach().float().requires_grad_() for t in a.floats()])
    out = call(a, H, W, ks, pool_hw)
    with torch_reference():
        ref = aggregated_attention_torch(a, H, W, ks)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    for name, got, want in zip(AttentionInputs._fields,
                               torch.autograd.grad(out, a.floats(), grad),
                               torch.autograd.grad(ref, a.floats(), grad)):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol, msg=name)


# (B, heads, H, W, head_dim, window) through parity.check_case (the pooled grid does not
# divide the map): batch and heads > 1 with 77 queries; window 5; a 2 x 3 map under a 5 x 5
# window, smaller than one block
SHAPES = [(2, 3, 7, 11, 24, 3), (1, 2, 9, 5, 24, 5), (2, 2, 2, 3, 8, 5)]


@in_child
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize('shape', SHAPES, ids=str)
def test_parity(shape, dtype):
    results = check_case(TRITON, shape, dtype, 'cpu')
    assert [what for what, err in results] == ['forward'] + [
        f'grad {n}' for n in AttentionInputs._fields[:10]]
    bad = [(what, err) for what, err in results if not err <= 1]
    assert not bad, f'{dtype}: error / tolerance {bad}'


@in_child
def test_small_blocks(small_blocks):
    """77 queries in 16-query blocks, 24 pooled keys in two steps, rows that repeat."""
    H, W, ks, pool_hw = 7, 11, 3, (4, 6)
    assert_matches_torch(attention_inputs(2, 2, H, W, 8, ks, pool_hw), H, W, ks, pool_hw)


@in_child
def test_gpu_block_sizes(monkeypatch):
    """The blocks and warps a GPU launches with (BLOCKS['forward'] / ['backward']), here in
    the interpreter: 77 queries, 24 pooled keys (two backward steps of 16)."""
    from mmtransnext.ops import aggregated_attention_triton as kernels
    monkeypatch.setattr(kernels, 'interpreting', lambda: False)
    H, W, ks, pool_hw = 7, 11, 3, (4, 6)
    assert_matches_torch(attention_inputs(2, 2, H, W, 24, ks, pool_hw), H, W, ks, pool_hw)


# the pooled grid of every stage of TransNeXt-T (sr 8, 4, 2) at 224: 7 x 7 from 56, 28, 14
# tokens per side (heads cut to 1 at stage 1 for time), and at 512 (16 x 16, from 32 tokens
# at sr 2 here)
STAGES = [(1, 1, 56, 56, 24, 3, (7, 7)), (1, 2, 28, 28, 24, 3, (7, 7)),
          (2, 3, 14, 14, 24, 3, (7, 7)), (1, 2, 32, 32, 24, 3, (16, 16))]


@in_child
@pytest.mark.parametrize('B,heads,H,W,d,ks,pool_hw', STAGES)
def test_stage_pool_grids(B, heads, H, W, d, ks, pool_hw):
    assert_matches_torch(attention_inputs(B, heads, H, W, d, ks, pool_hw), H, W, ks, pool_hw)


def _model_inputs(mode, H, W, img_size, sr_ratio=2, heads=2, d=8, ks=3):
    """AttentionInputs as AggregatedAttention builds them for this bias mode (the bias row
    table and rows; random learnable parameters), and the pooled grid."""
    from mmtransnext.models.layers import AggregatedAttention, PositionBiasSettings
    torch.manual_seed(0)
    settings = PositionBiasSettings(img_size=img_size, pretrain_size=224, mode=mode, stride=8)
    attn = AggregatedAttention(dim=heads * d, num_heads=heads, sr_ratio=sr_ratio,
                               window_size=ks, bias_settings=settings)
    with torch.no_grad():
        a, pool_hw = attn.attention_inputs(torch.randn(2, H * W, heads * d), H, W)
    a = a._replace(rpb=torch.randn_like(a.rpb), learnable_tokens=torch.randn_like(
        a.learnable_tokens) * .3, learnable_bias=torch.randn_like(a.learnable_bias) * .3)
    return a, pool_hw


# (mode, H, W, img_size): interpolate with a y resize (the img grid is 5 x 7 at stride 8: a
# table of the distinct resized rows) and without one (same height), extrapolate (rows that
# repeat), linear (the fixed 7 x 7 pool: 49 keys on a 9 x 8 map)
MODES = [('interpolate', 7, 9, (40, 56)), ('interpolate', 5, 9, (40, 56)),
         ('extrapolate', 5, 7, (40, 56)), ('linear', 9, 8, (40, 56))]


@in_child
@pytest.mark.parametrize('mode,H,W,img_size', MODES)
def test_bias_modes(monkeypatch, mode, H, W, img_size):
    """Through the dispatch point (MMTRANSNEXT_FUSED=triton) against the torch path."""
    monkeypatch.setenv('MMTRANSNEXT_FUSED', 'triton')
    a, pool_hw = _model_inputs(mode, H, W, img_size)
    assert a.pos_rows.shape == (H * pool_hw[0],)
    assert fused_impl(a.q, H, W, pool_hw) == 'triton'
    assert_matches_torch(a, H, W, 3, pool_hw,
                         call=lambda a, H, W, ks, p: aggregated_attention(a, H, W, ks, p))


@in_child
def test_backbone_matches_torch_path(monkeypatch, fresh_checks):
    """A small TransNeXt (every windowed stage, interpolate from img_size 96 at 64: y
    resize) with MMTRANSNEXT_FUSED=triton: outputs and every parameter gradient as the torch
    path's."""
    from mmtransnext.models import TransNeXt
    arch = dict(embed_dims=[16, 32, 64, 128], num_heads=[1, 2, 2, 4], depths=[1, 1, 1, 1],
                mlp_ratios=[2, 2, 2, 2], sr_ratios=[8, 4, 2, 1])
    torch.manual_seed(0)
    model = TransNeXt(arch=arch, img_size=96, pos_bias='interpolate')
    x = torch.randn(2, 3, 64, 64)
    params = list(model.parameters())

    def run():
        outs = model(x)
        return outs, torch.autograd.grad(sum(o.square().mean() for o in outs), params)

    from mmtransnext.ops import aggregated_attention_triton as kernels
    calls, forward = [], kernels.forward
    monkeypatch.setattr(kernels, 'forward', lambda *a: calls.append(1) or forward(*a))
    monkeypatch.setenv('MMTRANSNEXT_FUSED', 'triton')
    outs, grads = run()
    assert len(calls) == 1 + 3  # the self-check, then the three windowed stages
    with torch_reference():
        ref_outs, ref_grads = run()
    for got, want in zip(outs + grads, ref_outs + ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@in_child
def test_offsets_are_int64():
    """The kernels' offset helpers at the largest input users run: batch 8, 2048 x 2048,
    TransNeXt-B (stage 1: 512 x 512 tokens, 4 heads, head_dim 32, pooled 64 x 64; with a y
    resize the bias table has at most one row per (query row, key row): [4, 512 * 64,
    512 * 64])."""
    from triton_offsets_probe import offsets_probe
    B, heads, N, d, H, Hk, W, Wk = 8, 4, 512 * 512, 32, 512, 64, 512, 64
    n_rows, row_len = H * Hk, W * Wk
    out = torch.zeros(2, dtype=torch.int64)
    # the last (batch, head) of q [B*heads, N, d]; the last entry of the table
    offsets_probe[(1,)](out, B * heads - 1, N, d, heads - 1, n_rows, row_len, n_rows - 1,
                        row_len - 1)
    assert out[0] == (B * heads - 1) * N * d
    last = heads * n_rows * row_len - 1
    assert last >= 2 ** 31  # past int32: the helper must be 64-bit
    assert out[1] == last


@in_child
def test_dispatch(monkeypatch):
    """MMTRANSNEXT_FUSED=triton takes the kernel for fp32 / fp16 / bf16 (under autocast too);
    not for float64, dropout or a pooled grid larger than the map; off by default."""
    a = attention_inputs(1, 2, 5, 6, 4, 3, (2, 3))
    assert fused_impl(a.q, 5, 6, (2, 3)) != 'triton'  # default: not asked for
    monkeypatch.setenv('MMTRANSNEXT_FUSED', 'triton')
    assert fused_impl(a.q, 5, 6, (2, 3)) == 'triton'
    assert fused_impl(a.q.half(), 5, 6, (2, 3)) == 'triton'
    assert fused_impl(a.q.double(), 5, 6, (2, 3)) != 'triton'
    assert fused_impl(a.q, 5, 6, (2, 3), dropout_active=True) is None
    assert fused_impl(a.q, 5, 6, (7, 7)) is None
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = aggregated_attention(a, 5, 6, 3, (2, 3))
    assert out.dtype == torch.bfloat16
    monkeypatch.setenv('MMTRANSNEXT_FUSED', 'bogus')
    with pytest.raises(ValueError, match='MMTRANSNEXT_FUSED must be one of'):
        fused_impl(a.q, 5, 6, (2, 3))


@in_child
def test_pos_rows_out_of_range():
    a = attention_inputs(1, 2, 5, 6, 4, 3, (2, 3))
    rows = a.pos_rows.clone()
    rows[3] = a.pos_table.shape[1]
    with pytest.raises(RuntimeError, match=r'pos_rows holds values outside \[0, R\)'):
        triton_call(a._replace(pos_rows=rows), 5, 6, 3, (2, 3))


@pytest.fixture
def fresh_checks():
    self_check.reset()
    yield
    self_check.reset()


@in_child
@pytest.mark.parametrize('fault', ['wrong', 'raises'])
def test_self_check_falls_back(monkeypatch, fresh_checks, fault):
    """A faulty Triton kernel: the first call's self-check catches it, warns once naming the
    mismatch and check_ops.py, and the process takes the next implementation down."""
    from mmtransnext.ops import aggregated_attention_triton as kernels
    good = kernels.forward

    def faulty(*args, **kwargs):
        if fault == 'raises':
            raise RuntimeError('injected kernel failure')
        out, lse = good(*args, **kwargs)
        return out * 1.01, lse

    monkeypatch.setattr(kernels, 'forward', faulty)
    monkeypatch.setenv('MMTRANSNEXT_FUSED', 'triton')
    a = attention_inputs(2, 2, 5, 7, 4, 3, (2, 3))
    with pytest.warns(UserWarning,
                      match=r'self-check: the Triton kernels.*check_ops\.py') as record:
        out = aggregated_attention(a, 5, 7, 3, (2, 3))
    message = str(record[0].message)
    assert ('forward' in message) if fault == 'wrong' else ('injected kernel failure' in message)
    assert self_check.failures() == [('triton', 'cpu', torch.float32)]
    assert fused_impl(a.q, 5, 7, (2, 3)) != 'triton'
    with torch_reference():
        ref = aggregated_attention_torch(a, 5, 7, 3)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # once per process: no second warning
        aggregated_attention(a, 5, 7, 3, (2, 3))


@in_child
def test_self_check_passes_and_can_be_skipped(monkeypatch, fresh_checks):
    from mmtransnext.ops import aggregated_attention_triton as kernels
    monkeypatch.setenv('MMTRANSNEXT_FUSED', 'triton')
    a = attention_inputs(1, 2, 5, 7, 4, 3, (2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        aggregated_attention(a, 5, 7, 3, (2, 3))
    assert self_check.passed('triton', a.q.device, a.q.dtype) and not self_check.failures()
    # the check runs with gradients whatever the caller's mode
    self_check.reset()
    with torch.inference_mode():
        aggregated_attention(a, 5, 7, 3, (2, 3))
    assert self_check.passed('triton', a.q.device, a.q.dtype) and not self_check.failures()
    # MMTRANSNEXT_SELF_CHECK=0: no check, so the (injected) faulty kernel serves
    self_check.reset()
    monkeypatch.setenv('MMTRANSNEXT_SELF_CHECK', '0')
    good = kernels.forward
    monkeypatch.setattr(kernels, 'forward', lambda *t: (lambda o, l: (o * 2, l))(*good(*t)))
    out = aggregated_attention(a, 5, 7, 3, (2, 3))
    with torch_reference():
        ref = aggregated_attention_torch(a, 5, 7, 3)
    torch.testing.assert_close(out, 2 * ref, rtol=1e-4, atol=1e-4)


# -- the window kernels' self-check (no interpreter needed) -------------------------------------

@in_parent
@requires_ext
def test_window_kernel_self_check_falls_back(monkeypatch, fresh_checks):
    """A faulty compiled window kernel where the check applies (CUDA; here CPU, injected):
    warning, then the torch path for that (device, dtype)."""
    from mmtransnext.ops.sliding_window import sliding_window_qk
    from mmtransnext.ops.sliding_window_torch import sliding_qk_torch
    monkeypatch.setitem(self_check.CHECKED_DEVICES, 'ext', ('cpu',))
    good = torch.ops.mmtransnext.sliding_qk
    monkeypatch.setattr(torch.ops.mmtransnext, 'sliding_qk', lambda *t: good(*t) + 0.5)
    q, k = torch.randn(2, 1, 2, 20, 8).unbind(0)
    rpb = torch.randn(2, 9)
    with pytest.warns(UserWarning, match=r'self-check: the compiled window kernels.*'
                                         r'sliding_qk forward.*check_ops\.py'):
        out = sliding_window_qk(q, k, rpb, 4, 5, 3)
    assert self_check.failures() == [('ext', 'cpu', torch.float32)]
    assert torch.equal(out, sliding_qk_torch(q, k, rpb, 4, 5, 3))
