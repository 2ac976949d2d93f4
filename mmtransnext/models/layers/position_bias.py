"""Log-spaced continuous position bias (log-CPB) shared by both TransNeXt attentions.

For a query grid Hq x Wq and a key grid Hk x Wk the bias of head h is
``B[h, q, k] = cpb_fc2(ReLU(cpb_fc1(c(q, k))))[h]`` with per-axis coordinates
``c = sign(r) * log2(|r| + 1) / log2(8)``, ``r = (q_coord - k_coord) / (S - 1) * 8``:
query coordinates 0..n-1, key coordinates the adaptive average pool of them, S the
stage's token count per side at ``pretrain_size``.

Because the two axes are independent, c takes at most |U_h| * |U_w| distinct values (U the
distinct relative values per axis). The MLP runs on those only (the *table*
[heads, U_h, U_w]) and the bias is gathered with two small per-axis index tables
``ih[(qy, ky)]``, ``iw[(qx, kx)]``. Coordinates and indices are cached per grid (they are
constants). cpb_fc1 is linear in (c_h, c_w), so it is evaluated per axis; the rest of the
MLP on every pair runs in :func:`mmtransnext.ops.cpb_mlp.cpb_mlp` (fused on CPU: the
[U_h, U_w, hidden] activations are never stored).

'interpolate' builds the bias on the ``img_size`` grid and resizes it bilinearly
(align_corners=False) over the key axes and the query axes. That resize is separable per
axis, and along x it only touches the (qx, kx) pairs, which the table reaches through
``iw``; so the x-pair resize runs on the gathered table [heads, U_h, Wq0 * Wk0] (small).
Along y each resized (qy, ky) pair is a weighted sum of 4 of those rows (``ih`` at the two
taps per axis), and many pairs share taps and weights: the distinct sums are formed once
(one fused gather, F.embedding_bag) and the pairs index them. Same values as resizing the
full bias; only the order of the sums differs.

The attentions take the bias as a *row table* [heads, R, Wq*Wk] and a row index [Hq*Hk]
(:func:`expand_bias`): the x-resized table [heads, U_h, Wq*Wk] with ``ih`` without a y
resize, the distinct y-resized rows with their index after one (stage 1 of T at 1024 from
512: 1528 distinct rows of 8192 pairs), a few MB where the bias is tens or hundreds (stage 1
of T at 512: 6 MB against 50 MB). The fused op reads the bias from it; the torch path
expands it with one gather.

Under ``torch.no_grad`` (or when the MLP's parameters need no gradient) the table is cached
per module and grid, keyed by the parameters' version counters and storage, so inference
over many images or scales runs the MLP once per grid; any in-place update of the
parameters (optimizer step, ``load_state_dict``, ``copy_`` under no_grad) invalidates it.
Writes through ``param.data`` bypass version counters: call ``clear_bias_cache()`` after
those.
"""
import math
import numbers
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmtransnext.compat import assume_constant_result, autocast_dtype, is_compiling
from mmtransnext.ops.bias_rows import expand_bias
from mmtransnext.ops.cpb_mlp import cpb_mlp

POS_BIAS_MODES = ('interpolate', 'extrapolate', 'linear')

# grids kept per cache: CoordinateCache (all modules) and each module's table cache (enough
# for a 6-scale ms+flip test cycling through its sizes)
COORDINATE_CACHE_SIZE = 64
TABLE_CACHE_SIZE = 8
# tokens per side at pretrain_size that the coordinate normalisation (S - 1) needs
MIN_PRETRAIN_TOKENS = 2


def size_pair(size) -> Tuple[int, int]:
    """An image size given as one int or as (height, width), as a tuple (height, width)."""
    return (size, size) if isinstance(size, numbers.Number) else tuple(size)


def min_pretrain_size(stride: int) -> int:
    """Smallest pretrain_size that gives the coordinate normalisation enough tokens."""
    return MIN_PRETRAIN_TOKENS * stride


def check_pos_bias(mode: str) -> str:
    if mode not in POS_BIAS_MODES:
        raise ValueError(f'pos_bias must be one of {POS_BIAS_MODES}, got {mode!r}')
    return mode


@dataclass(frozen=True)
class PositionBiasSettings:
    """How one stage builds its position bias (travels from the backbone to the attentions).

    Args:
        img_size (int | tuple[int, int]): Image size on which 'interpolate' builds the bias.
        pretrain_size (int): Image size that fixes the coordinate normalisation S.
        mode (str): 'interpolate' | 'extrapolate' | 'linear'.
        fixed_pool_size (int): Key grid side in 'linear' mode.
        stride (int): Token stride of the stage (4, 8, 16, 32).
    """
    img_size: Tuple[int, int]
    pretrain_size: int
    mode: str = 'interpolate'
    fixed_pool_size: int = 7
    stride: int = 4

    def __post_init__(self):
        object.__setattr__(self, 'img_size', size_pair(self.img_size))
        check_pos_bias(self.mode)
        if self.pretrain_size < min_pretrain_size(self.stride):
            raise ValueError(f'pretrain_size {self.pretrain_size} gives {self.pretrain_tokens} '
                             f'token(s) per side at stride {self.stride}; need at least '
                             f'{MIN_PRETRAIN_TOKENS}')

    @property
    def pretrain_tokens(self) -> int:
        return self.pretrain_size // self.stride

    @property
    def img_grid(self) -> Tuple[int, int]:
        return self.img_size[0] // self.stride, self.img_size[1] // self.stride


class CoordinateCache:
    """Per-grid coordinates and gather indices, and the distinct rows of a y resize (least
    recently used out beyond ``maxsize``); ``builds`` counts cache misses.

    Args:
        maxsize (int): Grids kept. Defaults to COORDINATE_CACHE_SIZE.
    """

    def __init__(self, maxsize: int = COORDINATE_CACHE_SIZE):
        self._entries: 'OrderedDict[tuple, Tuple[torch.Tensor, ...]]' = OrderedDict()
        self.maxsize = maxsize
        self.builds = 0

    def clear(self):
        self._entries.clear()

    def get(self, q_hw, k_hw, pretrain_tokens: int, device: torch.device):
        """(U_h values, U_w values, [Hq*Hk] row index, [Wq*Wk] column index)."""
        return self._lookup(_build_coordinates, q_hw, k_hw, pretrain_tokens, device)

    def resized_rows(self, q_hw, k_hw, pretrain_tokens: int, device: torch.device,
                     new_heights: Tuple[int, int]):
        """(taps [R', 4], weights [R', 4] float64, rows [Hq*Hk]) of the (query, key) row pairs
        of the grid q_hw x k_hw resized to the heights ``new_heights`` (see
        :func:`_build_resized_rows`)."""
        return self._lookup(_build_resized_rows, q_hw, k_hw, pretrain_tokens, device,
                            new_heights)

    def _lookup(self, build, q_hw, k_hw, pretrain_tokens, device, *extra):
        # tensors made under inference_mode cannot be saved for backward: kept apart (not
        # asked while Dynamo traces, which cannot ask: traced calls share the entries)
        inference = not is_compiling() and torch.is_inference_mode_enabled()
        key = (build.__name__, *q_hw, *k_hw, pretrain_tokens, str(device), inference, *extra)
        entry = self._entries.get(key)
        if entry is None:
            entry = build(q_hw, k_hw, pretrain_tokens, device, *extra)
            self._entries[key] = entry
            self.builds += 1
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
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
@assume_constant_result
def _build_coordinates(q_hw, k_hw, pretrain_tokens, device):
    vh, ih = _axis_coordinates(q_hw[0], k_hw[0], pretrain_tokens)
    vw, iw = _axis_coordinates(q_hw[1], k_hw[1], pretrain_tokens)
    return tuple(t.to(device) for t in (vh, vw, ih.flatten(), iw.flatten()))


def _bilinear_taps(n_in: int, n_out: int):
    """The two source indices and weights of each output of a bilinear resize n_in -> n_out
    along one axis, as F.interpolate(mode='bilinear', align_corners=False, size=...) takes
    them: source ``(dst + 0.5) * n_in / n_out - 0.5`` clamped at 0. Each [n_out]."""
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    w1 = src - i0
    return i0, (i0 + 1).clamp(max=n_in - 1), 1 - w1, w1


@assume_constant_result
def _build_resized_rows(q_hw, k_hw, pretrain_tokens, device, new_heights):
    """The y-pair resize of a row table as a few distinct weighted sums of its rows.

    Resizing the (query row, key row) pairs from (Hq0, Hk0) to (Hq, Hk) makes each new row
    a sum of 4 table rows ``ih[a, b]`` (a, b the two taps per axis) with weights
    ``wq[a] * wk[b]``; rows with the same 4 taps and weights are equal (at 2x, 3-5x fewer
    distinct ones than pairs; fewer repeat at other ratios). Returns the distinct (taps
    [R', 4], weights [R', 4] float64) and, per new pair, its distinct row [Hq*Hk]."""
    _, ih = _axis_coordinates(q_hw[0], k_hw[0], pretrain_tokens)
    qa0, qa1, qw0, qw1 = _bilinear_taps(q_hw[0], new_heights[0])
    kb0, kb1, kw0, kw1 = _bilinear_taps(k_hw[0], new_heights[1])
    taps = torch.stack([ih[qa][:, kb] for qa in (qa0, qa1) for kb in (kb0, kb1)], -1)
    weights = torch.stack([qw[:, None] * kw[None] for qw in (qw0, qw1) for kw in (kw0, kw1)],
                          -1)
    distinct, rows = torch.unique(torch.cat([taps.view(-1, 4).double(), weights.view(-1, 4)],
                                            1), dim=0, return_inverse=True)
    return distinct[:, :4].long().to(device), distinct[:, 4:].to(device), rows.to(device)


def _resize_pair(x, size, new_size):
    """Bilinear resize (align_corners=False) of the (query, key) pair of one axis.

    x: [heads, C, nq * nk]; returns [heads, C, new_nq * new_nk]."""
    if tuple(size) == tuple(new_size):
        return x
    heads = x.shape[0]
    x = F.interpolate(x.view(heads, -1, *size), size=new_size, mode='bilinear',
                      align_corners=False)
    return x.view(heads, -1, new_size[0] * new_size[1])


def bias_rows_from_table(table, ih, iw, q_hw, k_hw, pretrain_tokens, new_q_hw=None,
                         new_k_hw=None):
    """(row table [heads, R, Wq*Wk], rows [Hq*Hk]) of the bias (see
    :func:`~mmtransnext.ops.bias_rows.expand_bias`) from the CPB table [heads, U_h, U_w] of
    the grid q_hw x k_hw (coordinates scaled by ``pretrain_tokens``), bilinearly resized to
    new_q_hw x new_k_hw when those are given and differ."""
    new_q_hw = tuple(new_q_hw or q_hw)
    new_k_hw = tuple(new_k_hw or k_hw)
    (hq, wq), (hk, wk) = new_q_hw, new_k_hw
    # gather, not index_select: along the last dim it is 10-20x faster on CPU
    cols = torch.gather(table, 2, iw.expand(*table.shape[:2], -1))
    cols = _resize_pair(cols, (q_hw[1], k_hw[1]), (wq, wk))  # [heads, U_h, Wq * Wk]
    if (q_hw[0], k_hw[0]) == (hq, hk):
        return cols, ih
    taps, weights, rows = COORDINATE_CACHE.resized_rows(q_hw, k_hw, pretrain_tokens,
                                                        table.device, (hq, hk))
    # the distinct resized rows, each a weighted sum of 4 rows of cols, in one fused gather
    heads, n_rows, length = cols.shape
    offsets = torch.arange(heads, device=taps.device).view(heads, 1, 1) * n_rows
    distinct = F.embedding_bag((taps + offsets).view(-1, 4), cols.reshape(-1, length),
                               per_sample_weights=weights.to(cols.dtype).repeat(heads, 1),
                               mode='sum')
    return distinct.view(heads, -1, length), rows


class LogCPB(nn.Module):
    """The cpb_fc1 / cpb_fc2 MLP and the bias construction for every position-bias mode.

    Subclassed by both attentions so the parameters keep their official names
    (``attn.cpb_fc1``, ``attn.cpb_fc2``).

    Args:
        num_heads (int): Heads (outputs of cpb_fc2).
        sr_ratio (int): Key-grid reduction (1: keys on the query grid).
        bias_settings (PositionBiasSettings): img_size, pretrain_size, mode,
            fixed_pool_size and stride of the stage.
    """

    def __init__(self, num_heads, sr_ratio, bias_settings: PositionBiasSettings,
                 cpb_hidden=512):
        super().__init__()
        if not isinstance(bias_settings, PositionBiasSettings):
            raise TypeError('bias_settings must be a PositionBiasSettings(img_size, '
                            'pretrain_size, mode, fixed_pool_size, stride), got '
                            f'{type(bias_settings).__name__}')
        self.cpb_fc1 = nn.Linear(2, cpb_hidden, bias=True)
        self.cpb_fc2 = nn.Linear(cpb_hidden, num_heads, bias=True)
        self.sr_ratio = sr_ratio
        self.bias_settings = bias_settings
        self._table_cache = OrderedDict()

    @property
    def pos_bias(self) -> str:
        return self.bias_settings.mode

    @pos_bias.setter
    def pos_bias(self, mode: str):
        self.bias_settings = replace(self.bias_settings, mode=mode)

    @property
    def pretrain_tokens(self) -> int:
        return self.bias_settings.pretrain_tokens

    def key_grid(self, height: int, width: int) -> Tuple[int, int]:
        """Key (pooled) grid for an H x W token map in the current mode."""
        if self.sr_ratio == 1:
            return height, width
        if self.pos_bias == 'linear':
            size = self.bias_settings.fixed_pool_size
            return size, size
        pool = (height // self.sr_ratio, width // self.sr_ratio)
        if min(pool) < 1:
            raise ValueError(
                f'a {height}x{width} token map is smaller than sr_ratio {self.sr_ratio}: '
                'the pooled path would be empty. Use a larger input, or '
                "pos_bias='linear' (fixed pool size).")
        return pool

    def cpb_table(self, vh, vw):
        """cpb_fc2(ReLU(cpb_fc1(c))) for every c = (vh[u], vw[v]): [heads, Uh, Uw]."""
        weight = self.cpb_fc1.weight
        dtype = weight.dtype
        rows = torch.addmm(self.cpb_fc1.bias, vh.to(dtype)[:, None], weight[:, :1].t())
        cols = vw.to(dtype)[:, None] @ weight[:, 1:].t()  # [Uw, hidden]
        return cpb_mlp(rows, cols, self.cpb_fc2.weight, self.cpb_fc2.bias).permute(2, 0, 1)

    # -- inference cache of the table ---------------------------------------------------------
    def _cpb_params(self):
        return (self.cpb_fc1.weight, self.cpb_fc1.bias, self.cpb_fc2.weight, self.cpb_fc2.bias)

    def clear_bias_cache(self):
        self._table_cache.clear()

    def __getstate__(self):  # copies and pickles start with an empty cache
        return {**self.__dict__, '_table_cache': OrderedDict()}

    def _cached_table(self, grid_key, vh, vw):
        params = self._cpb_params()
        if is_compiling() or (
                torch.is_grad_enabled() and any(p.requires_grad for p in params)):
            return self.cpb_table(vh, vw)
        device = params[0].device
        autocast = autocast_dtype(device.type)
        key = (grid_key, str(device), params[0].dtype, autocast,
               torch.is_inference_mode_enabled())
        stamp = tuple((p.data_ptr(), p._version) for p in params)
        entry = self._table_cache.get(key)
        if entry is not None and entry[0] == stamp:
            self._table_cache.move_to_end(key)
            return entry[1]
        table = self.cpb_table(vh, vw)
        self._table_cache[key] = (stamp, table)
        self._table_cache.move_to_end(key)
        if len(self._table_cache) > TABLE_CACHE_SIZE:
            self._table_cache.popitem(last=False)
        return table

    def position_bias(self, height: int, width: int) -> torch.Tensor:
        """Bias [heads, H*W, P] for an H x W token map (P from ``key_grid``)."""
        return expand_bias(*self.position_bias_rows(height, width), height, width)

    def position_bias_rows(self, height: int, width: int):
        """The bias of an H x W token map as (row table, rows): see :func:`expand_bias`."""
        q_hw, k_hw = (height, width), self.key_grid(height, width)
        q0, k0 = q_hw, k_hw
        if self.pos_bias == 'interpolate':
            q0 = self.bias_settings.img_grid
            k0 = q0 if self.sr_ratio == 1 else (q0[0] // self.sr_ratio, q0[1] // self.sr_ratio)
        pretrain = self.pretrain_tokens
        vh, vw, ih, iw = COORDINATE_CACHE.get(q0, k0, pretrain, self.cpb_fc1.weight.device)
        table = self._cached_table((*q0, *k0, pretrain), vh, vw)
        return bias_rows_from_table(table, ih, iw, q0, k0, pretrain, q_hw, k_hw)
