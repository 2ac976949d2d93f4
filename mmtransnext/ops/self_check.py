"""Run-time self-check of the compiled implementations that no CI machine runs.

The first time an implementation serves a (device, dtype) in a process, :func:`passed` runs
it on a small input against the torch path (:func:`.parity.check_case`: the output and
every input gradient, per-dtype tolerances). On a mismatch or an exception it warns once,
naming the mismatch and ``tools/analysis_tools/check_ops.py``, and answers False from then
on: the dispatch points take the next implementation down for that process
(Triton -> window kernels -> torch).

Checked: the Triton kernel (``'triton'``: on every device, CPU tensors run under its
interpreter) and the compiled window kernels on CUDA (``'ext'``; their CPU kernels are what
``make test`` runs). ``MMTRANSNEXT_SELF_CHECK=0`` skips the check (everything passes).
Nothing is checked while a graph is traced (torch.compile, export, FX, TorchScript): the
traced call runs no kernel.
"""
import contextlib
import os
import warnings

import torch

from .export_guard import tracing

ENV = 'MMTRANSNEXT_SELF_CHECK'
TOOL = 'tools/analysis_tools/check_ops.py'
# implementation -> the parity kernels it is checked by, and the small shape
# (B, heads, H, W, head_dim, window): odd grid, borders, two heads and batch entries; head_dim
# 24 and window 3 as in TransNeXt, so that on a GPU the check compiles the Triton kernels the
# model then runs (triton specialises them on the padded head_dim and the window)
CHECKS = {'triton': ('aggregated_attention_triton',),
          'ext': ('sliding_qk', 'sliding_av')}
SHAPE = (2, 2, 7, 9, 24, 3)
CHECKED_DEVICES = {'triton': ('cpu', 'cuda'), 'ext': ('cuda',)}
NAMES = {'triton': 'the Triton kernels of the fused aggregated attention (MMTRANSNEXT_FUSED='
                   'triton)',
         'ext': 'the compiled window kernels of mmtransnext._ext'}
FALLBACK = {'triton': 'the window kernels (or the torch path)', 'ext': 'the torch path'}

_results = {}       # (impl, device, dtype) -> bool; None while the check runs


def enabled() -> bool:
    return os.environ.get(ENV, '1') != '0'


def failures():
    """[(impl, device, dtype)] that failed their check in this process."""
    return [key for key, ok in _results.items() if ok is False]


def reset():
    """Forget every result (the tests; a process that swapped a kernel)."""
    _results.clear()


def _run(impl, device, dtype):
    """None if every check of ``impl`` passes, else what failed (one line)."""
    from . import ext_loader
    from .parity import check_case
    ext_loader.load()  # registers the window ops (a no-op once loaded)
    bad = []
    ctx = torch.autocast(device.type, enabled=False) if device.type in ('cpu', 'cuda') \
        else contextlib.nullcontext()
    with torch.inference_mode(False), torch.enable_grad(), ctx:
        for kernel in CHECKS[impl]:
            results = check_case(kernel, SHAPE, dtype, device, deterministic=False)
            bad += [f'{kernel} {what}: error {err:.3g} x tolerance' for what, err in results
                    if not err <= 1]
    return '; '.join(bad) or None


def passed(impl: str, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``impl`` may serve tensors of this device and dtype: its check, run the first
    time, passed (or the check is off / does not apply)."""
    if not enabled() or tracing() or device.type not in CHECKED_DEVICES[impl]:
        return True
    key = (impl, str(device), dtype)
    if key in _results:
        return bool(_results[key])  # None (the check in progress): not yet trusted
    _results[key] = None
    try:
        problem = _run(impl, device, dtype)
    except Exception as e:  # any failure of the kernel is a reason not to use it
        problem = f'{type(e).__name__}: {e}'
    _results[key] = problem is None
    if problem is not None:
        warnings.warn(
            f'mmtransnext self-check: {NAMES[impl]} do not match the torch path on {device} '
            f'{dtype} ({problem}); this process uses {FALLBACK[impl]} there instead. Run '
            f'`python {TOOL} --device {device.type}` for the full report; {ENV}=0 skips this '
            'check.', stacklevel=3)
    return _results[key]
