"""Sliding-window ops on the CPU: the compiled extension against the pure-PyTorch path.

Gradients are checked in float64 (torch.autograd.gradcheck) for both implementations;
the implementations must agree in float32 to 1e-5 with identical -inf (outside) positions.
"""
import warnings

import pytest
import torch

from mmtransnext.ops import sliding_window_av, sliding_window_qk
from mmtransnext.ops.sliding_window_torch import sliding_av_torch, sliding_qk_torch
from ops_testing import make_inputs, mask, requires_ext

# (B, heads, H, W, head_dim, window): odd sizes with borders, a window wider than the image,
# the model's head_dim 24.
SHAPES = [(2, 2, 7, 11, 5, 3), (1, 2, 7, 11, 3, 5), (2, 1, 2, 3, 4, 5), (1, 3, 9, 13, 24, 3),
          (2, 2, 6, 5, 16, 7)]


def ext_qk(q, k, rpb, H, W, ks):
    return torch.ops.mmtransnext.sliding_qk(q, k, rpb, H, W, ks)


def ext_av(w, v, H, W, ks):
    return torch.ops.mmtransnext.sliding_av(w, v, H, W, ks)


def _impl(name):
    return {'torch': (sliding_qk_torch, sliding_av_torch), 'ext': (ext_qk, ext_av)}[name]


# -- gradients (float64) ------------------------------------------------------------------

# The torch path runs ~10 ops per call: smaller cases keep its gradcheck time down.
GRADCHECK_CASES = [pytest.param('ext', *case, marks=requires_ext) for case in
                   [(2, 2, 7, 11, 3, 3), (1, 2, 7, 11, 2, 5), (1, 1, 2, 3, 3, 5)]] + [
    ('torch', 1, 2, 7, 11, 2, 3), ('torch', 1, 1, 7, 11, 2, 5), ('torch', 1, 1, 2, 3, 3, 5)]


@pytest.mark.parametrize('impl,B,heads,H,W,d,ks', GRADCHECK_CASES)
def test_gradcheck(impl, B, heads, H, W, d, ks):
    qk, av = _impl(impl)
    x = make_inputs(B, heads, H, W, d, ks, torch.float64, requires_grad=True)
    outside = mask(H, W, ks)

    def qk_finite(q, k, rpb):
        # -inf entries have no finite differences; they are constants (zero gradient).
        return qk(q, k, rpb, H, W, ks).masked_fill(outside, 0.)

    assert torch.autograd.gradcheck(qk_finite, (x['q'], x['k'], x['rpb']))
    assert torch.autograd.gradcheck(lambda w, v: av(w, v, H, W, ks), (x['w'], x['v']))


# -- agreement (float32) ------------------------------------------------------------------

def _close(a, b, tol=1e-5):
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@requires_ext
@pytest.mark.parametrize('B,heads,H,W,d,ks', SHAPES)
def test_qk_ext_matches_torch(B, heads, H, W, d, ks):
    x = make_inputs(B, heads, H, W, d, ks, requires_grad=True)
    ref = sliding_qk_torch(x['q'], x['k'], x['rpb'], H, W, ks)
    out = ext_qk(x['q'], x['k'], x['rpb'], H, W, ks)
    assert out.shape == ref.shape == (B, heads, H * W, ks * ks) and out.is_contiguous()
    assert torch.equal(torch.isneginf(out), torch.isneginf(ref))
    assert torch.equal(torch.isneginf(out[0, 0]), mask(H, W, ks))
    _close(out.masked_fill(mask(H, W, ks), 0), ref.masked_fill(mask(H, W, ks), 0))

    # A gradient that is non-zero at the -inf positions too: they must get no gradient.
    grad = torch.randn_like(out)
    g_ref = torch.autograd.grad(ref, (x['q'], x['k'], x['rpb']), grad)
    g_ext = torch.autograd.grad(out, (x['q'], x['k'], x['rpb']), grad)
    for a, b in zip(g_ext, g_ref):
        _close(a, b)


@requires_ext
@pytest.mark.parametrize('B,heads,H,W,d,ks', SHAPES)
def test_av_ext_matches_torch(B, heads, H, W, d, ks):
    x = make_inputs(B, heads, H, W, d, ks, requires_grad=True)
    ref = sliding_av_torch(x['w'], x['v'], H, W, ks)
    out = ext_av(x['w'], x['v'], H, W, ks)
    assert out.shape == ref.shape and out.is_contiguous()
    _close(out, ref)
    grad = torch.randn_like(out)
    g_ref = torch.autograd.grad(ref, (x['w'], x['v']), grad)
    g_ext = torch.autograd.grad(out, (x['w'], x['v']), grad)
    for a, b in zip(g_ext, g_ref):
        _close(a, b)
    # Weights of outside positions multiply zeros: their gradient is exactly zero.
    assert (g_ext[0][:, :, mask(H, W, ks)] == 0).all()


@requires_ext
def test_non_contiguous_inputs(monkeypatch):
    """The model passes permuted views ([B, N, heads, d] memory); results must not change."""
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'ext')
    B, heads, H, W, d, ks = 2, 3, 5, 7, 8, 3
    base = torch.randn(B, H * W, 3, heads, d).permute(2, 0, 3, 1, 4)
    q, k, v = base.unbind(0)
    assert not q.is_contiguous()
    rpb = torch.randn(heads, ks * ks)
    _close(sliding_window_qk(q, k, rpb, H, W, ks),
           sliding_qk_torch(q.contiguous(), k.contiguous(), rpb, H, W, ks))
    w = torch.randn(B, H * W, heads, ks * ks).transpose(1, 2)
    _close(sliding_window_av(w, v, H, W, ks),
           sliding_av_torch(w.contiguous(), v.contiguous(), H, W, ks))


@requires_ext
@pytest.mark.parametrize('dtype,tol', [(torch.bfloat16, 3e-2), (torch.float16, 1e-2)])
def test_cpu_low_precision(dtype, tol):
    """16-bit inputs (fp32 accumulation) against fp32 on the same rounded inputs."""
    B, heads, H, W, d, ks = 1, 2, 6, 9, 24, 3
    x = make_inputs(B, heads, H, W, d, ks, dtype)
    f = {n: t.float() for n, t in x.items()}
    out = ext_qk(x['q'], x['k'], x['rpb'], H, W, ks)
    assert out.dtype == dtype
    ref = sliding_qk_torch(f['q'], f['k'], f['rpb'], H, W, ks)
    assert torch.equal(torch.isneginf(out), torch.isneginf(ref))
    outside = mask(H, W, ks)
    torch.testing.assert_close(out.float().masked_fill(outside, 0), ref.masked_fill(outside, 0),
                               rtol=tol, atol=tol)
    torch.testing.assert_close(ext_av(x['w'], x['v'], H, W, ks).float(),
                               sliding_av_torch(f['w'], f['v'], H, W, ks), rtol=tol, atol=tol)


@requires_ext
def test_rpb_grad_deterministic():
    x = make_inputs(2, 3, 9, 7, 8, 3, requires_grad=True)
    grad = torch.randn(2, 3, 63, 9)
    grads = [torch.autograd.grad(ext_qk(x['q'], x['k'], x['rpb'], 9, 7, 3), x['rpb'], grad)[0]
             for _ in range(3)]
    assert all(torch.equal(grads[0], g) for g in grads[1:])


# -- torch.library.opcheck ----------------------------------------------------------------

@pytest.mark.needs('torch', (2, 4), 'torch.library.opcheck')
@requires_ext
@pytest.mark.parametrize('ks', [3, 5])
def test_opcheck(ks):
    B, heads, H, W, d = 2, 2, 5, 6, 4
    x = make_inputs(B, heads, H, W, d, ks, requires_grad=True)
    ops = torch.ops.mmtransnext
    torch.library.opcheck(ops.sliding_qk.default, (x['q'], x['k'], x['rpb'], H, W, ks))
    torch.library.opcheck(ops.sliding_av.default, (x['w'], x['v'], H, W, ks))
    y = make_inputs(B, heads, H, W, d, ks, seed=1)
    torch.library.opcheck(ops.sliding_qk_backward.default,
                          (y['w'], y['q'], y['k'], H, W, ks))
    torch.library.opcheck(ops.sliding_av_backward.default,
                          (y['q'], y['w'], y['v'], H, W, ks))


@requires_ext
@pytest.mark.parametrize('impl', ['ext', 'auto'])
def test_meta_tensors(monkeypatch, impl):
    """The fake kernels give shapes (meta device, no data), through the dispatch point too."""
    monkeypatch.setenv('MMTRANSNEXT_OPS', impl)
    x = make_inputs(2, 3, 4, 5, 8, 3, device='meta')
    out = torch.ops.mmtransnext.sliding_qk(x['q'], x['k'], x['rpb'], 4, 5, 3)
    assert out.device.type == 'meta' and out.shape == (2, 3, 20, 9)
    assert torch.ops.mmtransnext.sliding_av(x['w'], x['v'], 4, 5, 3).shape == (2, 3, 20, 8)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no "extension unavailable" warning for meta
        assert sliding_window_qk(x['q'], x['k'], x['rpb'], 4, 5, 3).shape == (2, 3, 20, 9)
        assert sliding_window_av(x['w'], x['v'], 4, 5, 3).shape == (2, 3, 20, 8)
