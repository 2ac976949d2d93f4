"""CUDA kernels against the fp32 reference (skipped without a CUDA device).

Tolerances (max-abs and relative, per element, with inputs first rounded to the tested
dtype so only the kernel's arithmetic differs): fp32 1e-5 (1e-4 for the summed rpb
gradient); fp16 1e-2; bf16 3e-2 (output rounding of ~2^-8 relative on values of ~5).
"""
import pytest
import torch

from mmtransnext.ops import sliding_window_av, sliding_window_qk
from mmtransnext.ops.sliding_window_torch import sliding_av_torch, sliding_qk_torch
from ops_testing import make_inputs, mask, requires_cuda

pytestmark = requires_cuda

TOLS = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 3e-2}
SHAPES = [(2, 3, 7, 11, 24, 3), (1, 2, 9, 5, 24, 5), (2, 2, 2, 3, 8, 5), (1, 4, 33, 17, 32, 7)]


def _ops():
    return torch.ops.mmtransnext


@pytest.mark.parametrize('dtype', list(TOLS))
@pytest.mark.parametrize('B,heads,H,W,d,ks', SHAPES)
def test_forward_matches_reference(dtype, B, heads, H, W, d, ks):
    tol = TOLS[dtype]
    x = make_inputs(B, heads, H, W, d, ks, dtype, device='cuda')
    ref_in = {n: t.cpu().float() for n, t in x.items()}
    outside = mask(H, W, ks)

    out = _ops().sliding_qk(x['q'], x['k'], x['rpb'], H, W, ks)
    ref = sliding_qk_torch(ref_in['q'], ref_in['k'], ref_in['rpb'], H, W, ks)
    assert out.dtype == dtype and out.device.type == 'cuda'
    assert torch.equal(torch.isneginf(out).cpu(), torch.isneginf(ref))
    torch.testing.assert_close(out.cpu().float().masked_fill(outside, 0),
                               ref.masked_fill(outside, 0), rtol=tol, atol=tol)

    out = _ops().sliding_av(x['w'], x['v'], H, W, ks)
    ref = sliding_av_torch(ref_in['w'], ref_in['v'], H, W, ks)
    torch.testing.assert_close(out.cpu().float(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize('dtype', list(TOLS))
@pytest.mark.parametrize('B,heads,H,W,d,ks', SHAPES)
def test_gradients_match_reference(dtype, B, heads, H, W, d, ks):
    tol = TOLS[dtype]
    x = make_inputs(B, heads, H, W, d, ks, dtype, device='cuda', requires_grad=True)
    ref_in = {n: t.detach().cpu().float().requires_grad_() for n, t in x.items()}
    g = torch.Generator().manual_seed(1)
    g_attn = torch.randn(B, heads, H * W, ks * ks, generator=g).to(dtype)  # non-zero outside
    g_out = torch.randn(B, heads, H * W, d, generator=g).to(dtype)

    out = _ops().sliding_qk(x['q'], x['k'], x['rpb'], H, W, ks)
    got = torch.autograd.grad(out, (x['q'], x['k'], x['rpb']), g_attn.cuda())
    ref = sliding_qk_torch(ref_in['q'], ref_in['k'], ref_in['rpb'], H, W, ks)
    want = torch.autograd.grad(ref, (ref_in['q'], ref_in['k'], ref_in['rpb']), g_attn.float())
    for name, a, b in zip(('q', 'k', 'rpb'), got, want):
        # the rpb gradient sums B*N terms: scale the tolerance with its magnitude
        t = tol * (10 if name == 'rpb' else 1)
        torch.testing.assert_close(a.cpu().float(), b, rtol=t, atol=t, msg=name)

    out = _ops().sliding_av(x['w'], x['v'], H, W, ks)
    got = torch.autograd.grad(out, (x['w'], x['v']), g_out.cuda())
    ref = sliding_av_torch(ref_in['w'], ref_in['v'], H, W, ks)
    want = torch.autograd.grad(ref, (ref_in['w'], ref_in['v']), g_out.float())
    for name, a, b in zip(('attn', 'v'), got, want):
        torch.testing.assert_close(a.cpu().float(), b, rtol=tol, atol=tol, msg=name)


def test_gradcheck_float64():
    B, heads, H, W, d, ks = 1, 2, 5, 7, 3, 3
    x = make_inputs(B, heads, H, W, d, ks, torch.float64, device='cuda', requires_grad=True)
    outside = mask(H, W, ks, 'cuda')
    assert torch.autograd.gradcheck(
        lambda q, k, rpb: _ops().sliding_qk(q, k, rpb, H, W, ks).masked_fill(outside, 0),
        (x['q'], x['k'], x['rpb']))
    assert torch.autograd.gradcheck(lambda w, v: _ops().sliding_av(w, v, H, W, ks),
                                    (x['w'], x['v']))


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_deterministic_gradients(dtype):
    """Under torch.use_deterministic_algorithms(True) repeated backward passes are bitwise
    equal (the rpb gradient uses two-stage reductions, no atomics)."""
    B, heads, H, W, d, ks = 4, 6, 64, 48, 24, 3  # several partial-sum chunks per (head, j)
    x = make_inputs(B, heads, H, W, d, ks, dtype, device='cuda', requires_grad=True)
    grad = torch.randn(B, heads, H * W, ks * ks, device='cuda', dtype=dtype)
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(3):
            out = _ops().sliding_qk(x['q'], x['k'], x['rpb'], H, W, ks)
            runs.append(torch.autograd.grad(out, (x['q'], x['k'], x['rpb']), grad))
            torch.cuda.synchronize()
    finally:
        torch.use_deterministic_algorithms(prev)
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert torch.equal(a, b)


def test_dispatch_uses_cuda_kernels_and_current_device(monkeypatch):
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'ext')
    x = make_inputs(1, 2, 5, 6, 8, 3, device='cuda')
    out = sliding_window_qk(x['q'], x['k'], x['rpb'], 5, 6, 3)
    assert out.device == x['q'].device
    out = sliding_window_av(x['w'], x['v'], 5, 6, 3)
    assert out.device == x['v'].device
    # non-contiguous views and a non-default stream
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        v = x['v'].transpose(2, 3).contiguous().transpose(2, 3)
        out2 = sliding_window_av(x['w'], v, 5, 6, 3)
    stream.synchronize()
    torch.testing.assert_close(out2, out)


def test_mixed_devices_error():
    x = make_inputs(1, 2, 5, 6, 4, 3, device='cuda')
    with pytest.raises(RuntimeError, match='different devices'):
        _ops().sliding_qk(x['q'], x['k'].cpu(), x['rpb'], 5, 6, 3)
    with pytest.raises(RuntimeError, match='different devices'):
        _ops().sliding_av(x['w'].cpu(), x['v'], 5, 6, 3)
