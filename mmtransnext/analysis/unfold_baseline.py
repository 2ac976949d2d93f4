"""The authors' window attention as a drop-in for the window ops, defined only for the
benchmark: F.unfold copies keys and values k*k-fold ([B, heads, N, d, k*k]), then a
batched matmul per query."""


def unfold_qk(q, k, rpb, height, width, kernel_size):
    import torch.nn.functional as F

    from mmtransnext.ops.window_geometry import outside_mask
    B, h, N, d = q.shape
    nk = kernel_size * kernel_size
    k_img = k.transpose(2, 3).reshape(B, h * d, height, width)
    k_loc = F.unfold(k_img, kernel_size, padding=kernel_size // 2)
    k_loc = k_loc.reshape(B, h, d, nk, N).permute(0, 1, 4, 2, 3)  # [B, h, N, d, k*k]
    attn = (q.unsqueeze(-2) @ k_loc).squeeze(-2) + rpb.view(1, h, 1, nk).to(q.dtype)
    return attn.masked_fill(outside_mask(height, width, kernel_size, q.device), float('-inf'))


def unfold_av(attn, v, height, width, kernel_size):
    import torch.nn.functional as F
    B, h, N, d = v.shape
    nk = kernel_size * kernel_size
    v_img = v.transpose(2, 3).reshape(B, h * d, height, width)
    v_loc = F.unfold(v_img, kernel_size, padding=kernel_size // 2)
    v_loc = v_loc.reshape(B, h, d, nk, N).permute(0, 1, 4, 3, 2)  # [B, h, N, k*k, d]
    return (attn.unsqueeze(-2) @ v_loc).squeeze(-2)
