"""Mixed precision: under autocast the window ops take mixed fp32/low-precision inputs the
way matmul does (cast to the autocast dtype, fp32 accumulation), so a whole TransNeXt runs
forward and backward under torch.autocast / mmengine's AmpOptimWrapper.

CPU autocast is bf16 only. Tolerance: bf16 keeps 8 mantissa bits (~4e-3 relative per
rounding); through a micro backbone the outputs stay within 5e-2 of fp32 relative to each
output's largest value.
"""
import pytest
import torch

from mmtransnext.models import TransNeXt
from mmtransnext.ops import sliding_window_av, sliding_window_qk
from mmtransnext.ops.sliding_window_torch import sliding_av_torch, sliding_qk_torch
from ops_testing import make_inputs, mask, requires_cuda, requires_ext

IMPLS = [pytest.param('ext', marks=requires_ext), 'torch']


def _rel_err(out, ref):
    return float((out.float() - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize('impl', IMPLS)
def test_ops_cast_mixed_inputs_under_autocast(impl, monkeypatch):
    monkeypatch.setenv('MMTRANSNEXT_OPS', impl)
    H, W, ks = 7, 11, 3
    x = make_inputs(2, 3, H, W, 24, ks)
    outside = mask(H, W, ks)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        attn = sliding_window_qk(x['q'], x['k'].bfloat16(), x['rpb'], H, W, ks)
        out = sliding_window_av(x['w'], x['v'].bfloat16(), H, W, ks)
    assert attn.dtype == out.dtype == torch.bfloat16
    ref = sliding_qk_torch(x['q'], x['k'], x['rpb'], H, W, ks)
    assert torch.equal(torch.isneginf(attn), torch.isneginf(ref))
    assert _rel_err(attn.masked_fill(outside, 0), ref.masked_fill(outside, 0)) < 2e-2
    assert _rel_err(out, sliding_av_torch(x['w'], x['v'], H, W, ks)) < 2e-2


def test_mixed_dtypes_outside_autocast_still_raise():
    x = make_inputs(1, 2, 5, 5, 8, 3)
    with pytest.raises(TypeError, match='mixed dtypes'):
        sliding_window_qk(x['q'], x['k'].bfloat16(), x['rpb'], 5, 5, 3)
    with pytest.raises(TypeError, match='mixed dtypes'):
        sliding_window_av(x['w'], x['v'].bfloat16(), 5, 5, 3)


def _autocast_backbone(device, dtype):
    torch.manual_seed(0)
    model = TransNeXt(arch='micro', pos_bias='interpolate').to(device)
    x = torch.randn(2, 3, 64, 96, device=device)
    ref = [o.detach() for o in model(x)]
    with torch.autocast(device, dtype=dtype):
        outs = model(x)
    assert all(o.dtype == dtype for o in outs)
    for out, r in zip(outs, ref):
        assert _rel_err(out.detach(), r) < 5e-2
    # a random projection (a sum of squares of LayerNorm outputs is nearly constant)
    sum((o.float() * torch.randn(o.shape, device=device)).sum() for o in outs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == torch.float32 for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)
    attn = model.block1[0].attn
    assert attn.relative_pos_bias_local.grad.abs().sum() > 1e-3
    assert attn.cpb_fc1.weight.grad.abs().sum() > 1e-3


@pytest.mark.parametrize('impl', IMPLS)
def test_backbone_forward_backward_under_cpu_bf16_autocast(impl, monkeypatch):
    monkeypatch.setenv('MMTRANSNEXT_OPS', impl)
    _autocast_backbone('cpu', torch.bfloat16)


@requires_cuda
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_backbone_forward_backward_under_cuda_autocast(dtype):
    _autocast_backbone('cuda', dtype)
