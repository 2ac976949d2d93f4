"""torch.compile traces the compiled ops (fake kernels + registered autograd): one
AggregatedAttention block, fullgraph, forward and backward match eager on the CPU, with the
position bias extrapolated and interpolated (a 7 x 9 map from the 8 x 8 img_size grid: the
resize's distinct rows, built once as constants of the grid).

The backend is aot_eager: Dynamo + FakeTensor + AOTAutograd (everything that needs the ops'
registrations) without Inductor's C++ code generation, which takes ~1.5 min on 2 cores and
adds nothing for these ops (Inductor calls them as extern kernels; checked by hand).
"""
import pytest
import torch

from mmtransnext.models.layers import AggregatedAttention, PositionBiasSettings
from ops_testing import requires_ext


def _block(mode):
    torch.manual_seed(0)
    attn = AggregatedAttention(dim=32, num_heads=2, sr_ratio=2, window_size=3,
                               bias_settings=PositionBiasSettings(
                                   img_size=64, pretrain_size=224, mode=mode, stride=8))
    with torch.no_grad():  # non-trivial values for the zero-initialised parameters
        attn.learnable_bias.normal_(std=0.1)
        attn.relative_pos_bias_local.normal_(std=0.1)
    return attn


def _run(fn, attn, x, H, W):
    out = fn(x, H, W)
    grads = torch.autograd.grad(out.square().sum(),
                                [x, attn.relative_pos_bias_local, attn.q.weight, attn.kv.weight])
    return out, grads


@pytest.mark.needs('torch', (2, 2), 'torch.compile on Python 3.11 (2.1) with '
                         'torch._dynamo.lookup_backend')
@requires_ext
@pytest.mark.filterwarnings('ignore:Dynamo detected a call to a `functools.lru_cache`')
@pytest.mark.parametrize('mode', ['extrapolate', 'interpolate'])
def test_compiled_block_uses_ext_ops_and_matches_eager(monkeypatch, mode):
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'ext')
    torch._dynamo.reset()
    attn = _block(mode)
    H, W = 7, 9
    x = torch.randn(2, H * W, 32, requires_grad=True)
    targets = []

    def recording_backend(gm, example_inputs):
        targets.extend(str(n.target) for n in gm.graph.nodes if n.op == 'call_function')
        return torch._dynamo.lookup_backend('aot_eager')(gm, example_inputs)

    compiled = torch.compile(attn, backend=recording_backend, fullgraph=True)
    out_c, grads_c = _run(compiled, attn, x, H, W)
    # traced graphs take the torch path of the attention core (window ops, not the fused op);
    # the eager run compared against takes the same path
    monkeypatch.setenv('MMTRANSNEXT_FUSED', '0')
    out_e, grads_e = _run(attn, attn, x, H, W)
    assert any('mmtransnext.sliding_qk' in t for t in targets), targets
    assert any('mmtransnext.sliding_av' in t for t in targets), targets
    assert not any('aggregated_attention' in t for t in targets), targets
    torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-5)
    for gc, ge in zip(grads_c, grads_e):
        torch.testing.assert_close(gc, ge, rtol=1e-4, atol=1e-5)
