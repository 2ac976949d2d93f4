"""Pure-PyTorch sliding-window ops: shifted slices of a zero-padded map.

Each of the k*k window offsets is one slice of the padded key/value map, so the memory
cost is one padded copy instead of the k*k-fold copy that F.unfold materialises.
Autograd differentiates these directly; they are the reference for the compiled ops.
"""
import torch
import torch.nn.functional as F

from .window_geometry import outside_mask


def _padded(x, height, width, kernel_size):
    B, h, N, d = x.shape
    r = kernel_size // 2
    return F.pad(x.view(B, h, height, width, d), (0, 0, r, r, r, r))


def sliding_qk_torch(q, k, rpb, height, width, kernel_size):
    """attn[b,h,p,j] = q[b,h,p] . k[b,h,p+o_j] + rpb[h,j]; -inf where p+o_j is outside."""
    B, h, N, d = q.shape
    qg = q.view(B, h, height, width, d)
    kp = _padded(k, height, width, kernel_size)
    cols = [(qg * kp[:, :, i:i + height, j:j + width]).sum(-1)
            for i in range(kernel_size) for j in range(kernel_size)]
    attn = torch.stack(cols, dim=-1).view(B, h, N, kernel_size * kernel_size)
    attn = attn + rpb.view(1, h, 1, -1).to(attn.dtype)
    return attn.masked_fill(outside_mask(height, width, kernel_size, q.device), float('-inf'))


def sliding_av_torch(attn, v, height, width, kernel_size):
    """out[b,h,p] = sum_j attn[b,h,p,j] * v[b,h,p+o_j]; v is zero outside the image."""
    B, h, N, d = v.shape
    a = attn.view(B, h, height, width, kernel_size * kernel_size, 1)
    vp = _padded(v, height, width, kernel_size)
    out = None
    for i in range(kernel_size):
        for j in range(kernel_size):
            term = a[..., i * kernel_size + j, :] * vp[:, :, i:i + height, j:j + width]
            out = term if out is None else out + term
    return out.view(B, h, N, d)
