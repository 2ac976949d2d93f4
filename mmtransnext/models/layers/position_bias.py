"""Log-spaced continuous position bias (log-CPB) shared by both TransNeXt attentions.

For a query grid Hq x Wq and a key grid Hk x Wk the bias of head h is
``B[h, q, k] = cpb_fc2(ReLU(cpb_fc1(c(q, k))))[h]`` with per-axis coordinates
``c = sign(r) * log2(|r| + 1) / log2(8)``, ``r = (q_coord - k_coord) / (S - 1) * 8``:
query coordinates 0..n-1, key coordinates the adaptive average pool of them, S the
stage's token count per side at ``pretrain_size``.

Because the two axes are independent, c takes at most |U_h| * |U_w| distinct values (U the
distinct relative values per axis). The MLP runs on those only and the bias is gathered
with two small per-axis index tables. Coordinates and indices are cached per grid (they
are constants); the MLP runs on every call, so gradients reach cpb_fc1 and cpb_fc2.
cpb_fc1 is linear in (c_h, c_w), so it is evaluated per axis and broadcast-added; the
[U_h, U_w, hidden] activations are formed a few rows at a time so they stay in cache, and
in training they are recomputed in backward rather than stored.
"""
import math
from functools import partial
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

POS_BIAS_MODES = ('interpolate', 'extrapolate', 'linear')

GridKey = Tuple[int, int, int, int, int, str]
# elements of the hidden activation per chunk of the CPB MLP (8 MiB in fp32)
MLP_CHUNK_ELEMENTS = 1 << 21


def check_pos_bias(mode: str) -> str:
    if mode not in POS_BIAS_MODES:
        raise ValueError(f'pos_bias must be one of {POS_BIAS_MODES}, got {mode!r}')
    return mode


class CoordinateCache:
    """Per-grid coordinates and gather indices; ``builds`` counts cache misses."""

    def __init__(self):
        self._entries: Dict[GridKey, Tuple[torch.Tensor, ...]] = {}
        self.builds = 0

    def clear(self):
        self._entries.clear()

    def get(self, q_hw, k_hw, pretrain_tokens: int, device: torch.device):
        """(U_h values, U_w values, [Hq*Hk] row index, [Wq*Wk] column index)."""
        key = (*q_hw, *k_hw, pretrain_tokens, str(device))
        entry = self._entries.get(key)
        if entry is None:
            entry = _build_coordinates(q_hw, k_hw, pretrain_tokens, device)
            self._entries[key] = entry
            self.builds += 1
        return entry


COORDINATE_CACHE = CoordinateCache()


def _axis_coordinates(n_query: int, n_key: int, pretrain_tokens: int):
    """Distinct log-spaced relative coordinates along one axis and their [n_q, n_k] index."""
    q = torch.arange(n_query, dtype=torch.float32)
    k = F.adaptive_avg_pool1d(q.view(1, 1, -1), n_key).view(-1)
    rel = (q[:, None] - k[None, :]) / (pretrain_tokens - 1) * 8
    rel = torch.sign(rel) * torch.log2(rel.abs() + 1.0) / math.log2(8)
    values, index = torch.unique(rel, return_inverse=True)
    return values, index


# constants of the grid: torch.compile evaluates this once while tracing, so the number of
# distinct coordinates (which sizes the CPB MLP) is a plain integer, not a traced shape
@torch.compiler.assume_constant_result
def _build_coordinates(q_hw, k_hw, pretrain_tokens, device):
    vh, ih = _axis_coordinates(q_hw[0], k_hw[0], pretrain_tokens)
    vw, iw = _axis_coordinates(q_hw[1], k_hw[1], pretrain_tokens)
    return tuple(t.to(device) for t in (vh, vw, ih.flatten(), iw.flatten()))


class LogCPB(nn.Module):
    """The cpb_fc1 / cpb_fc2 MLP and the bias construction for every position-bias mode.

    Subclassed by both attentions so the parameters keep their official names
    (``attn.cpb_fc1``, ``attn.cpb_fc2``).

    Args:
        num_heads (int): Heads (outputs of cpb_fc2).
        sr_ratio (int): Key-grid reduction (1: keys on the query grid).
        stride (int): Token stride of this stage (4, 8, 16, 32).
        img_size (tuple[int, int]): Image size on which 'interpolate' builds the bias.
        pretrain_size (int): Image size that fixes the coordinate normalisation S.
        pos_bias (str): 'interpolate' | 'extrapolate' | 'linear'.
        fixed_pool_size (int): Key grid side in 'linear' mode.
    """

    def __init__(self, num_heads, sr_ratio, stride, img_size, pretrain_size,
                 pos_bias='interpolate', fixed_pool_size=7, cpb_hidden=512):
        super().__init__()
        self.cpb_fc1 = nn.Linear(2, cpb_hidden, bias=True)
        self.cpb_fc2 = nn.Linear(cpb_hidden, num_heads, bias=True)
        self.sr_ratio = sr_ratio
        self.pretrain_tokens = pretrain_size // stride
        if self.pretrain_tokens < 2:
            raise ValueError(f'pretrain_size {pretrain_size} gives {self.pretrain_tokens} '
                             f'token(s) per side at stride {stride}; need at least 2')
        self.img_grid = (img_size[0] // stride, img_size[1] // stride)
        self.pos_bias = check_pos_bias(pos_bias)
        self.fixed_pool_size = fixed_pool_size

    def key_grid(self, height: int, width: int) -> Tuple[int, int]:
        """Key (pooled) grid for an H x W token map in the current mode."""
        if self.sr_ratio == 1:
            return height, width
        if self.pos_bias == 'linear':
            return self.fixed_pool_size, self.fixed_pool_size
        pool = (height // self.sr_ratio, width // self.sr_ratio)
        if min(pool) < 1:
            raise ValueError(
                f'a {height}x{width} token map is smaller than sr_ratio {self.sr_ratio}: '
                'the pooled path would be empty. Use a larger input, or '
                "pos_bias='linear' (fixed pool size).")
        return pool

    def _cpb_rows(self, rows, cols):
        return self.cpb_fc2((rows[:, None] + cols).relu_())

    def cpb_table(self, vh, vw):
        """cpb_fc2(ReLU(cpb_fc1(c))) for every c = (vh[u], vw[v]): [heads, Uh, Uw]."""
        weight = self.cpb_fc1.weight
        dtype = weight.dtype
        rows = torch.addmm(self.cpb_fc1.bias, vh.to(dtype)[:, None], weight[:, :1].t())
        cols = vw.to(dtype)[:, None] @ weight[:, 1:].t()  # [Uw, hidden]
        mlp = self._cpb_rows
        if rows.requires_grad or cols.requires_grad:  # False under no_grad
            # recompute the hidden activations in backward instead of keeping them: they are
            # the block's largest tensors (126 MB per stage-1 block of T at 512 x 512)
            mlp = partial(checkpoint, self._cpb_rows, use_reentrant=False)
        step = max(1, MLP_CHUNK_ELEMENTS // cols.numel())
        table = torch.cat([mlp(rows[i:i + step], cols) for i in range(0, rows.shape[0], step)])
        return table.permute(2, 0, 1)

    def _bias_on_grid(self, q_hw, k_hw, device):
        vh, vw, ih, iw = COORDINATE_CACHE.get(q_hw, k_hw, self.pretrain_tokens, device)
        table = self.cpb_table(vh, vw)
        bias = table.index_select(2, iw).index_select(1, ih)  # [heads, Hq*Hk, Wq*Wk]
        heads = bias.shape[0]
        bias = bias.view(heads, q_hw[0], k_hw[0], q_hw[1], k_hw[1]).permute(0, 1, 3, 2, 4)
        return bias.reshape(heads, q_hw[0] * q_hw[1], k_hw[0] * k_hw[1])

    def position_bias(self, height: int, width: int) -> torch.Tensor:
        """Bias [heads, H*W, P] for an H x W token map (P from ``key_grid``)."""
        device = self.cpb_fc1.weight.device
        k_hw = self.key_grid(height, width)
        if self.pos_bias != 'interpolate':
            return self._bias_on_grid((height, width), k_hw, device)
        q0 = self.img_grid
        k0 = q0 if self.sr_ratio == 1 else (q0[0] // self.sr_ratio, q0[1] // self.sr_ratio)
        bias = self._bias_on_grid(q0, k0, device)
        return resize_bias(bias, q0, k0, (height, width), k_hw)


def resize_bias(bias, q_hw, k_hw, new_q_hw, new_k_hw):
    """Bilinearly resize [heads, Hq*Wq, Hk*Wk] along the key axes, then the query axes."""
    heads = bias.shape[0]
    if tuple(k_hw) != tuple(new_k_hw):
        bias = F.interpolate(bias.reshape(1, -1, *k_hw), size=new_k_hw, mode='bilinear',
                             align_corners=False)
        bias = bias.view(heads, q_hw[0] * q_hw[1], -1)
    if tuple(q_hw) != tuple(new_q_hw):
        n_k = bias.shape[-1]
        bias = bias.transpose(1, 2).reshape(1, heads * n_k, *q_hw)
        bias = F.interpolate(bias, size=new_q_hw, mode='bilinear', align_corners=False)
        bias = bias.view(heads, n_k, -1).transpose(1, 2)
    return bias
