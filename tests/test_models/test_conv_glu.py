"""ConvolutionalGLU's inference path (one band of rows at a time) gives the numbers of the
whole-map path, and is taken only where no autograd, dropout or tracing needs the map."""
import pytest
import torch

from mmtransnext.models.layers import conv_glu
from mmtransnext.models.layers.conv_glu import ConvolutionalGLU


@pytest.mark.parametrize('batch, height, width, band_tokens', [
    (1, 128, 128, 4096),   # TransNeXt-T's first stage at 512: 4 bands of 32 rows
    (2, 37, 45, 100),      # rows not a multiple of the band (2 rows per band), batch 2
    (1, 9, 50, 40),        # narrower band than one row: one row per band
])
def test_bands_equal_the_whole_map(monkeypatch, batch, height, width, band_tokens):
    monkeypatch.setattr(conv_glu, 'BAND_TOKENS', band_tokens)
    torch.manual_seed(0)
    module = ConvolutionalGLU(16, 40).eval()
    x = torch.randn(batch, height * width, 16)
    calls = []
    monkeypatch.setattr(module, '_forward_bands', lambda *a: calls.append(1) or
                        ConvolutionalGLU._forward_bands(module, *a))
    with torch.no_grad():
        whole = module._forward_map(x, height, width)
        banded = module(x, height, width)
    assert calls == [1]
    torch.testing.assert_close(banded, whole, rtol=1e-6, atol=1e-6)


def test_autograd_training_and_small_maps_use_the_whole_map(monkeypatch):
    monkeypatch.setattr(conv_glu, 'BAND_TOKENS', 10)
    module = ConvolutionalGLU(8, 16)
    monkeypatch.setattr(module, '_forward_bands', lambda *a: pytest.fail('banded'))
    x = torch.randn(1, 6 * 7, 8, requires_grad=True)
    module.eval()(x, 6, 7).sum().backward()           # autograd on
    with torch.no_grad():
        module.train()(x, 6, 7)                         # dropout may act
    monkeypatch.setattr(conv_glu, 'BAND_TOKENS', 4096)
    with torch.no_grad():
        module.eval()(x, 6, 7)                          # one band would be the map


@pytest.mark.parametrize('band_tokens', [4096, 40])
def test_fused_gate_gives_the_torch_path_numbers(monkeypatch, band_tokens):
    """ConvGLU through the fused gate op (where the extension serves float CPU tensors) and
    through torch ops: the same outputs and gradients (float64)."""
    from mmtransnext.ops import conv_glu_gate
    monkeypatch.setattr(conv_glu, 'BAND_TOKENS', band_tokens)
    torch.manual_seed(0)
    module = ConvolutionalGLU(12, 20).double()
    x = torch.randn(2, 11 * 9, 12, dtype=torch.double, requires_grad=True)

    def run():
        with torch.no_grad():
            inference = module.eval()(x, 11, 9)
        out = module.train()(x, 11, 9)
        grads = torch.autograd.grad(out.sum(), [x, *module.parameters()])
        return inference, out, grads

    calls = []
    fused = conv_glu_gate.conv_glu_gate
    monkeypatch.setattr(conv_glu_gate, 'conv_glu_gate', lambda *a: calls.append(1) or fused(*a))
    first = run()
    assert calls, 'the fused gate did not run'
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'torch')
    calls.clear()
    second = run()
    assert not calls
    torch.testing.assert_close(first[:2], second[:2], rtol=1e-12, atol=1e-12)
    for a, b in zip(first[2], second[2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('grad', [True, False])
def test_fx_symbolic_trace_takes_torch_ops(grad):
    """Under FX tracing the dispatch asks nothing of the traced proxies (their device or
    dtype cannot be compared) and the traced graph is plain torch ops with the same numbers."""
    torch.manual_seed(0)
    module = ConvolutionalGLU(8, 16).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.glu = module

        def forward(self, x):
            return self.glu(x, 6, 7)

    x = torch.randn(1, 42, 8)
    with torch.set_grad_enabled(grad):
        graph = torch.fx.symbolic_trace(Wrapped())
        assert 'conv_glu_gate' not in graph.code
        torch.testing.assert_close(graph(x), module(x, 6, 7), rtol=1e-5, atol=1e-5)
