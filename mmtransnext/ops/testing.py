"""Random inputs of the compiled ops, for the tests and tools/analysis_tools/check_ops.py.

Values are drawn in float64 from a seeded generator, then cast, so every dtype sees the same
numbers up to rounding. Keys are unit vectors and queries O(1) as in the model, so the
attention logits stay in the range the model produces.
"""
import torch
import torch.nn.functional as F

from .attention import AttentionInputs


def _generator(seed):
    return torch.Generator().manual_seed(seed)


def window_inputs(B, heads, H, W, d, ks, dtype=torch.float32, device='cpu', seed=0,
                  requires_grad=False):
    """q, k, v [B, heads, H*W, d], rpb [heads, k*k], window weights w [B, heads, H*W, k*k]."""
    g = _generator(seed)
    N, nk = H * W, ks * ks
    shapes = dict(q=(B, heads, N, d), k=(B, heads, N, d), v=(B, heads, N, d),
                  rpb=(heads, nk), w=(B, heads, N, nk))
    return {name: torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).to(device)
            .requires_grad_(requires_grad) for name, shape in shapes.items()}


def attention_inputs(B, heads, H, W, d, ks, pool_hw, dtype=torch.float32, device='cpu', seed=0,
                     requires_grad=False):
    """:class:`AttentionInputs` of the fused aggregated attention (the floating-point ones
    require grad if ``requires_grad``; ``pos_rows`` is int64)."""
    g = _generator(seed)
    N, P, nk = H * W, pool_hw[0] * pool_hw[1], ks * ks

    def rand(*shape, scale=1.):
        return torch.randn(shape, generator=g, dtype=torch.float64) * scale

    def unit(*shape):
        return F.normalize(rand(*shape), dim=-1)

    # a row table with fewer rows than (query row, key row) pairs, so rows repeat as in the
    # model (the backward adds several queries' gradients into one table entry)
    n_rows = max(1, H * pool_hw[0] // 2)
    a = AttentionInputs(
        q=unit(B, heads, N, d), q_scaled=rand(B, heads, N, d, scale=2.),
        key=unit(B, heads, N, d), value=rand(B, heads, N, d), key_pool=unit(B, heads, P, d),
        value_pool=rand(B, heads, P, d), rpb=rand(heads, nk),
        pos_table=rand(heads, n_rows, W * pool_hw[1]),
        learnable_tokens=rand(heads, d, nk, scale=.3), learnable_bias=rand(heads, nk, scale=.3),
        pos_rows=torch.randint(n_rows, (H * pool_hw[0],), generator=g))
    floats = [t.to(dtype).to(device).requires_grad_(requires_grad) for t in a.floats()]
    return AttentionInputs(*floats, a.pos_rows.to(device))
