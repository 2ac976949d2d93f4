"""Dispatch of aggregated attention's core (the window ops are dispatched in
:mod:`.sliding_window`): fused kernels or torch path.

From the projected tensors (:class:`AttentionInputs`) to the attention output before the
output projection. ``aggregated_attention`` runs a fused implementation (window and pooled
logits, one softmax, both weighted sums and the learnable term in one pass; backward
recomputes the probabilities from the stored log-sum-exp; no [B, heads, N, P] tensor kept):

  * ``'triton'``, the Triton kernels (:mod:`.aggregated_attention_triton`), when
    ``MMTRANSNEXT_FUSED=triton`` (opt-in: verified in Triton's interpreter only), triton >=
    3.0 is installed (:mod:`.triton_support`), the tensors are CUDA tensors (or CPU tensors
    under ``TRITON_INTERPRET=1``: the tests) in fp32 / fp16 / bf16, and its run-time
    self-check passed for that device and dtype (:mod:`.self_check`);
  * else ``'ext'``, the fused CPU op of ``mmtransnext._ext``, when the extension is used for
    these tensors (``MMTRANSNEXT_OPS`` auto / ext, see :mod:`.sliding_window`) and they are
    CPU tensors; CUDA tensors keep the window kernels plus torch matmul / softmax;
  * neither when ``MMTRANSNEXT_FUSED=0`` (keep the window kernels), attention dropout is
    active (training with attn_drop > 0), something traces the call (torch.compile / export,
    FX, TorchScript, ONNX: see :func:`.export_guard.tracing`), a self-check's reference runs,
    or the pooled grid is larger than the token map (the fused kernels reject that; the torch
    path pools up as the reference does).

Otherwise :func:`aggregated_attention_torch`, the reference, runs. All compute the same
numbers. The last stage's CosineMHSA is not fused: it is one matmul, a bias add and a softmax
on the 1/32 grid (1.6 % of a TransNeXt-T forward at 512 x 512 on CPU, 46 of 2940 ms, 1
thread). Non-finite inputs are not checked: as in the torch path, a NaN or inf reaching a
query's logits makes that query's output NaN (softmax of inf - inf), other queries are
unaffected unless they read the same token.
"""
import os
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn as nn

from . import self_check, triton_support
from .bias_rows import expand_bias, identity_rows
from .checks import AGGREGATED_INPUTS, N_FLOAT_INPUTS
from .export_guard import tracing
from .sliding_window import _autocast, _use_ext, sliding_window_av, sliding_window_qk
from .torch_reference import reference_active

FUSED_CHOICES = ('1', '0', 'triton')


class AttentionInputs(NamedTuple):
    """Projected tensors of one aggregated attention call ([B, heads, N, d] unless noted)."""
    q: torch.Tensor                 # normalised query, unscaled (learnable term)
    q_scaled: torch.Tensor          # (q + query_embedding) * temperature * length scale
    key: torch.Tensor               # normalised keys
    value: torch.Tensor
    key_pool: torch.Tensor          # [B, heads, P, d], normalised
    value_pool: torch.Tensor        # [B, heads, P, d]
    rpb: torch.Tensor               # [heads, k*k] local relative position bias
    pos_table: torch.Tensor         # [heads, R, W*Wk] pooled-path bias as a row table
    learnable_tokens: torch.Tensor  # [heads, d, k*k]
    learnable_bias: torch.Tensor    # [heads, k*k]
    pos_rows: Optional[torch.Tensor]  # [H*Hk] int64 rows of pos_table (expand_bias), or
                                      # None: one table row per (query row, key row)

    def floats(self):
        """The floating-point tensors (all but ``pos_rows``): what has gradients."""
        return self[:N_FLOAT_INPUTS]

    def with_floats(self, *floats):
        """The same inputs with the floating-point tensors replaced (e.g. cast)."""
        return AttentionInputs(*floats, self.pos_rows)


assert AttentionInputs._fields == AGGREGATED_INPUTS  # the fused op's argument order


def attention_probs(a: AttentionInputs, height: int, width: int, kernel_size: int):
    """Softmax weights (window [B, heads, N, k*k], pooled [B, heads, N, P]) of the torch path."""
    attn_local = sliding_window_qk(a.q_scaled, a.key, a.rpb, height, width, kernel_size)
    pos_bias = expand_bias(a.pos_table, a.pos_rows, height, width)
    attn_pool = a.q_scaled @ a.key_pool.transpose(-2, -1) + pos_bias.to(a.q.dtype)
    attn = torch.cat([attn_local, attn_pool], dim=-1).softmax(dim=-1)
    return attn.split([kernel_size * kernel_size, attn_pool.shape[-1]], dim=-1)


def aggregated_attention_torch(a: AttentionInputs, height: int, width: int, kernel_size: int,
                               attn_drop: Optional[nn.Module] = None):
    """The reference: [B, heads, N, d]."""
    attn_local, attn_pool = attention_probs(a, height, width, kernel_size)
    if attn_drop is not None:
        attn_local, attn_pool = attn_drop(attn_local), attn_drop(attn_pool)
    # The window weights also get a learnable, query-dependent term (plain q, no scale).
    attn_local = (a.q @ a.learnable_tokens) + a.learnable_bias.unsqueeze(1) + attn_local
    return sliding_window_av(attn_local, a.value, height, width, kernel_size) \
        + attn_pool @ a.value_pool


def requested_fused() -> str:
    """``MMTRANSNEXT_FUSED``: '1' (default: the fused CPU op), '0' (off), 'triton' (the Triton
    kernels where they serve, else as '1')."""
    value = os.environ.get('MMTRANSNEXT_FUSED', '1').lower()
    if value not in FUSED_CHOICES:
        raise ValueError(f'MMTRANSNEXT_FUSED must be one of {FUSED_CHOICES}, got {value!r}')
    return value


def _compute_dtype(tensor):
    """The dtype the kernels run in: the autocast dtype where autocast is on (as
    :func:`.sliding_window._autocast` casts)."""
    return _autocast(tensor)[0].dtype


def fused_impl(tensor, height: int, width: int, pool_hw: Tuple[int, int],
               dropout_active: bool = False) -> Optional[str]:
    """'triton', 'ext' or None (the torch path) for these inputs (see the module doc)."""
    if dropout_active or tracing() or reference_active():
        return None
    fused = requested_fused()
    if fused == '0' or pool_hw[0] > height or pool_hw[1] > width:
        return None
    if fused == 'triton' and triton_support.usable(tensor) and self_check.passed(
            'triton', tensor.device, _compute_dtype(tensor)):
        return 'triton'
    if tensor.device.type in ('cpu', 'meta') and _use_ext(tensor):
        return 'ext'
    return None


def use_fused(tensor, height: int, width: int, pool_hw: Tuple[int, int],
              dropout_active: bool = False) -> bool:
    """Whether :func:`aggregated_attention` takes a fused implementation."""
    return fused_impl(tensor, height, width, pool_hw, dropout_active) is not None


def aggregated_attention(a: AttentionInputs, height: int, width: int, kernel_size: int,
                         pool_hw: Tuple[int, int], attn_drop: Optional[nn.Module] = None):
    """Attention output [B, heads, N, d]: a fused implementation where :func:`fused_impl`
    picks one, else the torch path (``attn_drop`` applied to both softmax parts there)."""
    dropout_active = attn_drop is not None and attn_drop.training and attn_drop.p > 0
    impl = fused_impl(a.q, height, width, pool_hw, dropout_active)
    if impl is None:
        return aggregated_attention_torch(a, height, width, kernel_size, attn_drop)
    if a.pos_rows is None:
        a = a._replace(pos_rows=identity_rows(a.pos_table))
    a = AttentionInputs(*_autocast(*a))
    # parameters and position bias in the activations' dtype, as the torch path casts them
    a = a._replace(**{n: getattr(a, n).to(a.q.dtype) for n in
                      ('rpb', 'pos_table', 'learnable_tokens', 'learnable_bias')})
    if impl == 'triton':
        from .aggregated_attention_triton import aggregated_attention_triton
        return aggregated_attention_triton(tuple(a), height, width, kernel_size, *pool_hw)
    return torch.ops.mmtransnext.aggregated_attention(*a, height, width, kernel_size,
                                                      *pool_hw)[0]
