"""Dispatch of the sliding-window ops (the fused attention core is dispatched in
:mod:`.attention`).

``sliding_window_qk`` and ``sliding_window_av`` pick, per call:
  * the compiled extension (``mmtransnext._ext``, CUDA kernels for CUDA tensors, C++ for CPU),
  * else pure PyTorch (``sliding_window_torch``), after a one-time warning naming the fix.
``MMTRANSNEXT_OPS=torch`` forces PyTorch; ``MMTRANSNEXT_OPS=ext`` forces the extension and
makes a missing one an error. All implementations compute the same numbers. In auto mode the
CUDA kernels serve a (device, dtype) only once their run-time self-check passed there
(:mod:`.self_check`: else a warning and the PyTorch path for the process); a forced ``ext``
is not checked.
During an ONNX export (:func:`.export_guard.tracing_for_export`) the PyTorch path is taken
whatever the setting: the exported graph then holds standard ONNX operators only.

Under autocast (``torch.autocast``, mmengine's AmpOptimWrapper) both ops behave like
matmul: floating inputs are cast to the autocast dtype (fp16 or bf16) and the kernels
accumulate in fp32. Outside autocast, inputs of mixed dtypes are an error.
"""
import os
import warnings

import torch

from mmtransnext.compat import autocast_dtype

from . import self_check
from .checks import check_av, check_qk, check_rpb
from .export_guard import tracing_for_export
from .sliding_window_torch import sliding_av_torch, sliding_qk_torch
from .torch_reference import reference_active

BUILD_HINT = ('build it with `make setup` (or `pip install --no-build-isolation -e .` '
              'in the repo root; FORCE_CUDA=1 for the CUDA kernels)')
_IMPLS = ('auto', 'torch', 'ext')
_warned = False


def requested_impl() -> str:
    impl = os.environ.get('MMTRANSNEXT_OPS', 'auto').lower()
    if impl not in _IMPLS:
        raise ValueError(f'MMTRANSNEXT_OPS must be one of {_IMPLS}, got {impl!r}')
    return impl


def _ext_ops():
    """The registered torch.ops.mmtransnext namespace, or None if the extension is missing."""
    from . import ext_loader
    return ext_loader.load()


def _ext_supports(ops, tensor) -> bool:
    if ops is None:
        return False
    from . import ext_loader

    # meta: the extension's fake kernels give shapes (no data), as for FakeTensors
    return tensor.device.type in ('cpu', 'meta') or (tensor.is_cuda and ext_loader.has_cuda())


def _use_ext(tensor) -> bool:
    global _warned
    if tracing_for_export() or reference_active():
        return False
    impl = requested_impl()
    if impl == 'torch':
        return False
    from . import ext_loader
    ops = _ext_ops()
    if impl == 'ext':
        if ops is None:
            raise ImportError(f'MMTRANSNEXT_OPS=ext but mmtransnext._ext is missing '
                              f'({ext_loader.load_error()}): {BUILD_HINT}.')
        if not _ext_supports(ops, tensor):
            raise RuntimeError(f'MMTRANSNEXT_OPS=ext but mmtransnext._ext has no kernel for '
                               f'{tensor.device.type} tensors: {BUILD_HINT}.')
        return True
    if _ext_supports(ops, tensor):
        return self_check.passed('ext', tensor.device, tensor.dtype)
    if not _warned:
        _warned = True
        why = ext_loader.load_error() or f'built without {tensor.device.type} kernels'
        warnings.warn(f'mmtransnext._ext unavailable ({why}); sliding-window attention uses '
                      f'the slower pure-PyTorch path. To use the kernels, {BUILD_HINT}.',
                      stacklevel=3)
    return False


def _autocast(*tensors):
    """Cast to the autocast dtype when autocast is on for these tensors' device, as
    matmul does (the window similarity and window sum are batched matmuls)."""
    dtype = autocast_dtype(tensors[0].device.type)
    if dtype is None:
        return tensors
    return tuple(t.to(dtype) if t.is_floating_point() else t for t in tensors)


def sliding_window_qk(q, k, rpb, height: int, width: int, kernel_size: int):
    """Window similarity [B, heads, H*W, k*k] (see sliding_qk_torch for the math).

    Args:
        q, k: [B, heads, H*W, head_dim], same dtype and device.
        rpb: [heads, k*k] relative position bias.
    """
    q, k, rpb = _autocast(q, k, rpb)
    check_qk('sliding_window_qk', q, k, height, width, kernel_size)
    rpb = rpb.to(q.dtype)
    check_rpb('sliding_window_qk', q, rpb, kernel_size)
    if _use_ext(q):
        return torch.ops.mmtransnext.sliding_qk(q, k, rpb, height, width, kernel_size)
    return sliding_qk_torch(q, k, rpb, height, width, kernel_size)


def sliding_window_av(attn, v, height: int, width: int, kernel_size: int):
    """Weighted window sum [B, heads, H*W, head_dim] (see sliding_av_torch for the math).

    Args:
        attn: [B, heads, H*W, k*k] window weights.
        v: [B, heads, H*W, head_dim], same dtype and device as attn.
    """
    attn, v = _autocast(attn, v)
    check_av('sliding_window_av', attn, v, height, width, kernel_size)
    if _use_ext(v):
        return torch.ops.mmtransnext.sliding_av(attn, v, height, width, kernel_size)
    return sliding_av_torch(attn, v, height, width, kernel_size)
