"""The cosine-normalised, scaled queries (and normalised keys) of both attentions, with a
backward that keeps only tensors the attention keeps anyway.

Autograd's F.normalize keeps its input for backward and ``(q + query_embedding) *
softplus(temperature) * length_scale`` keeps ``q + query_embedding``: three [B, heads, N, d]
tensors per attention beside the normalised q and keys the attention core keeps. These
functions compute the same numbers and keep the normalised output, the norms and the small
factors instead: the normalisation's gradient is (g - y (g . y)) / |x| (g / eps where the
norm was clamped), the scale's gradients are reductions that rebuild q + query_embedding
from q. Under no_grad, or when something traces the model, they are the plain expressions.
"""
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from mmtransnext.ops.export_guard import tracing

NORM_EPS = 1e-12  # F.normalize's default


def _recording(*tensors):
    return (torch.is_grad_enabled() and not tracing()
            and any(t.requires_grad for t in tensors))


class _L2Normalize(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x):
        norm = x.norm(2, -1, keepdim=True)
        unclamped = norm >= NORM_EPS
        norm = norm.clamp_min(NORM_EPS)
        y = _divided(x, norm)
        ctx.save_for_backward(y, norm, unclamped)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        y, norm, unclamped = ctx.saved_tensors
        along = (grad * y).sum(-1, keepdim=True) * unclamped
        return (grad - y * along) / norm


class _ScaledQuery(torch.autograd.Function):

    @staticmethod
    def forward(ctx, q, embedding, scale, length_scale):
        ctx.save_for_backward(q, embedding, scale)
        ctx.length_scale = length_scale  # a constant (tensor or number)
        return (q + embedding) * scale * length_scale

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        q, embedding, scale = ctx.saved_tensors
        length_scale = ctx.length_scale
        need_q, need_embedding, need_scale, need_length = ctx.needs_input_grad
        grad_q = grad_embedding = grad_scale = None
        grad_shifted = grad * scale * length_scale
        if need_q:
            grad_q = grad_shifted
        if need_embedding:
            grad_embedding = grad_shifted.sum_to_size(embedding.shape)
        if need_scale:
            grad_scale = (grad * length_scale * (q + embedding)).sum_to_size(scale.shape)
        if need_length:
            raise RuntimeError('scaled_query: the length scale is a constant of the grid')
        return grad_q, grad_embedding, grad_scale, None


def _divided(x, norm):
    """x / norm as a new contiguous tensor: a strided view x (the heads of a projection) is
    read once and written out head-major in the same pass, no separate copy."""
    out = torch.empty(x.shape, dtype=torch.result_type(x, norm), device=x.device)
    return torch.div(x, norm, out=out)


def l2_normalize(x):
    """F.normalize(x, dim=-1) (the same operations), contiguous whatever the layout of x
    (except while something traces the model); backward keeps the output and norms, not x."""
    if _recording(x):
        return _L2Normalize.apply(x)
    if tracing():
        return F.normalize(x, dim=-1)
    return _divided(x, x.norm(2, -1, keepdim=True).clamp_min(NORM_EPS))


def scaled_query(q, embedding, scale, length_scale):
    """(q + embedding) * scale * length_scale; backward keeps q (which the attention keeps)
    and the small factors, not q + embedding. ``length_scale`` is a constant."""
    if _recording(q, embedding, scale):
        return _ScaledQuery.apply(q, embedding, scale, length_scale)
    return (q + embedding) * scale * length_scale
