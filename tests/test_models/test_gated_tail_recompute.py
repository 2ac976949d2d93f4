"""ConvGLU in training keeps two hidden tensors (gate, value) for backward, recomputes the
rest, and gives the plain path's outputs and gradients (also under bf16 autocast)."""
import pytest
import torch

from mmtransnext.models.layers.conv_glu import ConvolutionalGLU


def _grads(module, x, height, width, plain, autocast=False):
    module.zero_grad()
    x = x.detach().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        out = (module._forward_map if plain else module)(x, height, width)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out.float() * weights).sum().backward()
    return out, [x.grad] + [p.grad for p in module.parameters()]


@pytest.mark.parametrize('batch, height, width', [(1, 8, 8), (2, 5, 7)])
def test_gradients_equal_the_plain_path(batch, height, width):
    torch.manual_seed(0)
    module = ConvolutionalGLU(6, 10).double().train()
    x = torch.randn(batch, height * width, 6, dtype=torch.double)
    out, grads = _grads(module, x, height, width, plain=False)
    ref_out, ref_grads = _grads(module, x, height, width, plain=True)
    assert out.grad_fn.name().startswith('GatedTailRecompute')
    assert torch.equal(out, ref_out)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


def test_bf16_autocast_gradients_as_close_as_the_plain_path():
    torch.manual_seed(0)
    module = ConvolutionalGLU(16, 40).train()
    x = torch.randn(1, 12 * 12, 16)
    _, fp32 = _grads(module, x, 12, 12, plain=True)
    out, ours = _grads(module, x, 12, 12, plain=False, autocast=True)
    ref_out, plain = _grads(module, x, 12, 12, plain=True, autocast=True)
    assert out.dtype == torch.bfloat16 and torch.equal(out, ref_out)
    for g, p, f in zip(ours, plain, fp32):
        assert g.dtype == f.dtype
        assert (g - f).norm() <= 1.5 * (p - f).norm() + 1e-6


@pytest.mark.parametrize('ops', ['auto', 'torch'])
def test_backward_keeps_gate_and_value_only(monkeypatch, ops):
    monkeypatch.setenv('MMTRANSNEXT_OPS', ops)
    module = ConvolutionalGLU(8, 32).train()
    x = torch.randn(1, 16 * 16, 8, requires_grad=True)
    hidden_sized = []

    def pack(t):
        if t.numel() >= 16 * 16 * 32:
            hidden_sized.append(t.untyped_storage().data_ptr())
        return t
    plain = 5 if ops == 'torch' else 3  # conv input, output, GELU, value, product / op
    for forward, expected in ((module, 2), (module._forward_map, plain)):
        hidden_sized.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            forward(x, 16, 16)
        assert len(set(hidden_sized)) == expected


def test_dropout_and_no_grad_take_the_plain_path():
    module = ConvolutionalGLU(8, 16, drop=0.1).train()
    x = torch.randn(1, 36, 8, requires_grad=True)
    assert 'GatedTailRecompute' not in module(x, 6, 6).grad_fn.name()
    module.eval()
    assert module(x, 6, 6).grad_fn.name().startswith('GatedTailRecompute')
    with torch.no_grad():
        assert module(x, 6, 6).grad_fn is None
