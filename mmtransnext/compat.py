"""What the supported library versions have: the one module that knows version facts.

mmtransnext runs on the authors' stack (torch 2.0.1, mmengine 0.7.3, mmcv 2.0) and on
today's (torch 2.12, mmengine 0.10); README "Supported versions" lists both. Every feature
that arrived inside that range is asked for here, never tested inline elsewhere:

=================================  ===================  ====================================
feature                            arrived in           on older versions
=================================  ===================  ====================================
torch.compile on Python 3.11       torch 2.1            torch's own error (tests: skipped)
torch.compiler.assume_constant_... torch 2.1            the function as it is (no compile)
torch.compiler.is_compiling        torch 2.3            torch._dynamo.is_compiling / False
torch._check                       torch 2.1            a plain check raising RuntimeError
is_fx_symbolic_tracing             torch 2.9            torch.fx's is_fx_tracing
is_autocast_enabled(device_type)   torch 2.4            the per-device getters of torch 2.0
torch.library.register_fake /      torch 2.4            ``Library.impl`` under the Meta and
register_autograd                                       Autograd keys (:mod:`.ops.op_registration`)
add_safe_globals (weights_only     torch 2.4            an allow-list unpickler with the same
allow-list)                                             list (:mod:`.utils.allowlist_unpickler`)
torch.load(mmap=True)              torch 2.1            a plain read
torch.onnx.export(dynamo=...)      torch 2.5            the TorchScript exporter is the only one
mmengine.device.is_musa_available  mmengine 0.10.3      False (no MUSA support)
resume skips the trained batches   mmengine 0.10.3      RNGStateHook's iterator skips them
CheckpointHook._save_checkpoint_   mmengine 0.8         SafeCheckpointHook routes every save
with_step, keep_ckpt_ids                                through it itself (no version test)
timm.layers.register_notrace_...   timm 1.0.16          timm.models._features_fx's
Triton kernels (MIN_TRITON)        triton 3.0           not offered (:mod:`.ops.triton_support`)
GELU backward, strided gradient    right in 2.12.1      probed (wrong in 2.0.1 on CPU): the
                                   (wrong in 2.0.1)     model's GELU makes it contiguous
=================================  ===================  ====================================

The C++ side keeps its own (Tensor::const_data_ptr, Library::set_python_module) in
csrc/common/torch_version.h.
"""
import contextlib
import functools
import re
import sys
from typing import Callable, Optional, Tuple

import torch


def version_tuple(version: str) -> Tuple[int, ...]:
    """'2.0.1+cu117' -> (2, 0, 1); '2.12.0a0+git' -> (2, 12, 0)."""
    return tuple(int(n) for n in re.findall(r'\d+', version.split('+')[0])[:3])


TORCH_VERSION = version_tuple(torch.__version__)


def torch_at_least(*version: int) -> bool:
    return TORCH_VERSION >= tuple(version)


# -- torch.compile and tracing -------------------------------------------------------------

#: torch.compile works on this interpreter (Python 3.11 needs torch >= 2.1).
COMPILE_SUPPORTED = torch_at_least(2, 1) or sys.version_info < (3, 11)


def assume_constant_result(fn: Callable) -> Callable:
    """torch.compiler.assume_constant_result where it exists (torch >= 2.1); older torch
    cannot compile on the supported Pythons, so the function is returned as it is."""
    compiler = getattr(torch, 'compiler', None)
    decorate = getattr(compiler, 'assume_constant_result', None)
    return decorate(fn) if decorate is not None else fn


def _pick_is_compiling() -> Callable[[], bool]:
    compiler = getattr(torch, 'compiler', None)
    if hasattr(compiler, 'is_compiling'):  # torch >= 2.3
        return compiler.is_compiling
    if COMPILE_SUPPORTED:  # torch 2.1, 2.2
        from torch._dynamo import is_compiling
        return is_compiling
    return lambda: False


#: True while torch.compile / torch.export trace the call.
is_compiling = _pick_is_compiling()


def _pick_is_fx_tracing() -> Callable[[], bool]:
    from torch.fx import _symbolic_trace
    found = getattr(_symbolic_trace, 'is_fx_symbolic_tracing', None)  # torch >= 2.9
    return found if found is not None else _symbolic_trace.is_fx_tracing


#: True while torch.fx symbolically traces the call.
is_fx_tracing = _pick_is_fx_tracing()


def check(cond, message: Callable[[], str]) -> None:
    """torch._check (torch >= 2.1: symbolic conditions are recorded, not specialised);
    before it no symbolic shapes exist, so the condition is a plain bool."""
    if hasattr(torch, '_check'):
        torch._check(cond, message)
    elif not cond:
        raise RuntimeError(message())


# -- autocast --------------------------------------------------------------------------------

def autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The autocast dtype when autocast is on for ``device_type`` ('cpu' or 'cuda'), else
    None (always for other devices, e.g. 'meta', which autocast does not know)."""
    if device_type not in ('cpu', 'cuda'):
        return None
    if torch_at_least(2, 4):
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    if device_type == 'cpu':
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


@functools.lru_cache(maxsize=None)
def gelu_backward_needs_contiguous_grad() -> bool:
    """Whether GELU's CPU backward is wrong for a strided incoming gradient (torch 2.0.1:
    values of 1e27 or NaN; 2.12 is right). Probed once on the torch at hand, a 4 x 4 case."""
    import torch.nn.functional as F

    # on the CPU explicitly: the first call may come inside a torch.device('meta') block
    x = torch.linspace(-2, 2, 16, device='cpu').view(1, 4, 4).requires_grad_()
    grad = torch.linspace(-1, 1, 16, device='cpu').view(1, 4, 4).transpose(1, 2)
    with torch.enable_grad():
        strided, = torch.autograd.grad(F.gelu(x), x, grad)
        contiguous, = torch.autograd.grad(F.gelu(x), x, grad.contiguous())
    return not torch.allclose(strided, contiguous)


# -- custom-op registration ------------------------------------------------------------------

@contextlib.contextmanager
def below_autograd():
    """Dispatch below the Autograd key inside the block (what a Python autograd kernel
    needs to call its own op): torch._C._AutoDispatchBelowAutograd is a context manager in
    newer torch and a plain guard object, active while it lives, in torch 2.0."""
    guard = torch._C._AutoDispatchBelowAutograd()
    if hasattr(guard, '__enter__'):
        with guard:
            yield
        return
    try:
        yield
    finally:
        del guard


#: torch.library.register_fake / register_autograd (torch >= 2.4).
HAS_OP_REGISTRATION_API = all(hasattr(torch.library, name)
                              for name in ('register_fake', 'register_autograd'))

# -- ONNX ------------------------------------------------------------------------------------

def torchscript_onnx_exporter() -> dict:
    """The keyword arguments of ``torch.onnx.export`` that pick the TorchScript-based
    exporter: ``dynamo=False`` from torch 2.5 (which has both); nothing before, where it is
    the only one."""
    return {'dynamo': False} if torch_at_least(2, 5) else {}


# -- checkpoints -----------------------------------------------------------------------------

#: torch.serialization.add_safe_globals / get_safe_globals (torch >= 2.4).
HAS_SAFE_GLOBALS = hasattr(torch.serialization, 'add_safe_globals')
#: torch.load(..., mmap=True) (torch >= 2.1).
HAS_LOAD_MMAP = torch_at_least(2, 1)


# -- triton --------------------------------------------------------------------------------

#: The Triton kernels' language (tl.dot input_precision, 64-bit program ids) and the CPU
#: interpreter they are tested in: triton 3.0, which ships with torch 2.4.
MIN_TRITON = (3, 0)


@functools.lru_cache(maxsize=None)
def triton_version() -> Optional[Tuple[int, ...]]:
    """(major, minor) of the installed triton (package metadata: triton is not imported), or
    None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version
    for name in ('triton', 'pytorch-triton', 'pytorch-triton-rocm'):
        try:
            return version_tuple(version(name))[:2]
        except PackageNotFoundError:
            continue
    return None


# -- timm ----------------------------------------------------------------------------------

def timm_register_notrace_module():
    """timm's ``register_notrace_module``: in ``timm.layers`` from timm 1.0.16, in
    ``timm.models._features_fx`` before."""
    try:
        from timm.layers import register_notrace_module
    except ImportError:
        from timm.models._features_fx import register_notrace_module
    return register_notrace_module


# -- mmengine ----------------------------------------------------------------------------------

def mmengine_at_least(*version: int) -> bool:
    import mmengine
    return version_tuple(mmengine.__version__) >= tuple(version)


def loop_skips_trained_batches() -> bool:
    """Whether mmengine's IterBasedTrainLoop advances the dataloader past the batches
    already trained when it resumes (mmengine >= 0.10.3); before it, the resumed run would
    train the first batches again unless the caller skips them (checkpoint/rng_state_hook.py)."""
    return mmengine_at_least(0, 10, 3)


def is_musa_available() -> bool:
    """mmengine.device.is_musa_available (mmengine >= 0.10.3); False before it, which
    knows no MUSA devices."""
    try:
        from mmengine.device import is_musa_available as probe
    except ImportError:
        return False
    return probe()


__all__ = ['COMPILE_SUPPORTED', 'HAS_LOAD_MMAP', 'HAS_OP_REGISTRATION_API', 'HAS_SAFE_GLOBALS',
           'TORCH_VERSION', 'assume_constant_result', 'autocast_dtype', 'below_autograd', 'check',
           'gelu_backward_needs_contiguous_grad', 'timm_register_notrace_module',
           'MIN_TRITON', 'torchscript_onnx_exporter', 'triton_version',
           'is_compiling', 'is_fx_tracing', 'is_musa_available', 'loop_skips_trained_batches',
           'mmengine_at_least',
           'torch_at_least', 'version_tuple']
