"""The log-CPB MLP's second half on every pair of row and column coordinates:
``out[u, v] = cpb_fc2(ReLU(rows[u] + cols[v]))`` -> [U, V, heads], where rows / cols are
cpb_fc1 applied to each axis's coordinates (it is linear, so the pair's pre-activation is
their sum; :meth:`mmtransnext.models.layers.position_bias.LogCPB.cpb_table`).

Two implementations, the same numbers up to the order of the sums:

  * the fused CPU op ``torch.ops.mmtransnext.cpb_mlp`` (csrc/cpb_mlp.h) where the extension
    serves CPU tensors (``MMTRANSNEXT_OPS`` auto / ext, as the window ops) and nothing
    traces the call: the [U, V, hidden] activations never exist, backward recomputes them
    pair by pair (TransNeXt-T's training step at 512 x 512: 260 ms of the MLP in the torch
    path). It computes in float32 (float64 inputs in float64): 16-bit inputs, as autocast
    makes them, are cast up and the table is rounded back to their dtype, the dtype the
    torch path returns (a bf16 table under autocast: half the bytes of the distinct y-resized
    rows that 'interpolate' builds at a new height);
  * the torch path (:func:`cpb_mlp_torch`): a few rows at a time so the activations stay in
    cache, recomputed in backward (checkpoint) rather than stored.
"""
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .checks import KERNEL_FLOAT_DTYPES
from .export_guard import tracing
from .sliding_window import _use_ext

# elements of the hidden activation per chunk of the torch path (8 MiB in fp32)
MLP_CHUNK_ELEMENTS = 1 << 21


def _pairs(rows, cols, weight, bias):
    return F.linear((rows[:, None] + cols).relu_(), weight, bias)


def cpb_mlp_torch(rows, cols, weight, bias):
    """The torch path: [U, V, heads]."""
    mlp = _pairs
    if any(t.requires_grad for t in (rows, cols, weight, bias)) and torch.is_grad_enabled():
        # recompute the hidden activations in backward instead of keeping them: they are
        # the block's largest tensors (126 MB per stage-1 block of T at 512 x 512)
        def mlp(*args):
            return checkpoint(_pairs, *args, use_reentrant=False)
    step = max(1, MLP_CHUNK_ELEMENTS // cols.numel())
    return torch.cat([mlp(rows[i:i + step], cols, weight, bias)
                      for i in range(0, rows.shape[0], step)])


def cpb_mlp(rows, cols, weight, bias):
    """[U, V, heads]: the fused CPU op where it serves, else :func:`cpb_mlp_torch`."""
    if not tracing() and rows.device.type == 'cpu':  # a traced proxy's device: no compare
        dtype = rows.dtype if rows.dtype in KERNEL_FLOAT_DTYPES else torch.float32
        args = [t.to(dtype) for t in (rows, cols, weight, bias)]
        if _use_ext(args[0]):
            return torch.ops.mmtransnext.cpb_mlp(*args).to(rows.dtype)
    return cpb_mlp_torch(rows, cols, weight, bias)
