"""The pooled path's position bias as a row table: the layout the fused op reads.

The log-CPB bias of an H x W query grid against an Hk x Wk key grid is separable enough
that its values repeat: with a table [heads, R, W * Wk] and rows [H * Hk] (int64),
``bias[h, (qy, qx), (ky, kx)] = table[h, rows[qy * Hk + ky], qx * Wk + kx]``
(mmtransnext.models.layers.position_bias builds both). The fused op reads the bias through
this formula (csrc/common/aggregated_attention_math.h: add_pooled_bias); the torch path
expands it here.
"""
import torch


def identity_rows(table):
    """The rows of a table that has one row per (query row, key row): 0, 1, ..., Hq*Hk - 1."""
    return torch.arange(table.shape[1], device=table.device)


def expand_bias(table, rows, height: int, width: int):
    """The bias [heads, Hq*Wq, Hk*Wk] of a row table: ``table[h, rows[qy * Hk + ky], qx * Wk +
    kx]`` for query (qy, qx) and key (ky, kx). table: [heads, R, Wq * Wk]; rows: [Hq * Hk]
    (int64, values < R), or None for :func:`identity_rows` (then R = Hq * Hk); Hq x Wq =
    height x width, Hk x Wk the key grid. The fused op reads the bias this way without
    forming it."""
    heads, n_rows, cols = table.shape
    if rows is None:  # one permuting copy
        hk, wk = n_rows // height, cols // width
        bias = table.reshape(heads, height, hk, width, wk).permute(0, 1, 3, 2, 4)
        return bias.reshape(heads, height * width, hk * wk)
    hk, wk = rows.numel() // height, cols // width
    # one gather of rows of Wk values from the table seen as [heads, (qx, row), kx], at
    # qx * R + rows[qy, ky], straight into the [heads, (qy, qx), (ky, kx)] layout
    flat = table.reshape(heads, n_rows, width, wk).transpose(1, 2).reshape(heads, -1, wk)
    index = torch.arange(width, device=rows.device).view(1, width, 1) * n_rows \
        + rows.view(height, 1, hk)
    return flat.index_select(1, index.flatten()).view(heads, height * width, hk * wk)
