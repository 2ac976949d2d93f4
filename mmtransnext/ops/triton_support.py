"""Whether the Triton kernels of the fused aggregated attention can be offered here, and why not.

The kernels (:mod:`.aggregated_attention_triton`) need triton >= 3.0
(:data:`mmtransnext.compat.MIN_TRITON`): the
language they are written in (``tl.dot(..., input_precision=...)``, 64-bit program ids) and
the rewritten interpreter (``TRITON_INTERPRET=1``), which runs them on CPU tensors for the
tests. torch 2.0 ships triton 2.0, which has neither: there the Triton path is simply not
offered, with the reason from :func:`unavailable_reason`. Nothing here imports triton until
it is asked for, so importing mmtransnext stays as cheap as before.

``TRITON_INTERPRET`` is read by triton when it is imported: it must be set before that.
"""
import os
import warnings
from functools import lru_cache
from typing import Optional

from mmtransnext.compat import MIN_TRITON, triton_version

DTYPES = ('float32', 'float16', 'bfloat16')  # what the kernels take (not float64)
_warned = [False]


def _min_text() -> str:
    return '.'.join(map(str, MIN_TRITON))


@lru_cache(maxsize=None)
def unavailable_reason() -> Optional[str]:
    """None if the Triton kernels can be used, else why not (one line)."""
    found = triton_version()
    if found is None:
        return f'triton is not installed (the Triton kernels need triton >= {_min_text()})'
    if found < MIN_TRITON:
        return (f'triton {".".join(map(str, found))} is too old (the Triton kernels need '
                f'triton >= {_min_text()}, which ships with torch >= 2.4)')
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as e:  # a broken install: any import error is a reason
        return f'triton does not import ({type(e).__name__}: {e})'
    return None


def interpreting() -> bool:
    """Whether triton runs (or will run, once imported) its interpreter on CPU tensors."""
    return os.environ.get('TRITON_INTERPRET', '0') not in ('', '0')


def serves(tensor) -> bool:
    """Whether the Triton kernels can run on this tensor's device: CUDA tensors, or CPU
    tensors under the interpreter (TRITON_INTERPRET=1; the tests)."""
    if tensor.device.type == 'cuda':
        return not interpreting()
    return tensor.device.type == 'cpu' and interpreting()


def usable(tensor) -> bool:
    """Whether the Triton kernels can serve this tensor (device, dtype, an installed triton
    >= MIN_TRITON); warns once, with the reason, where they were asked for and triton is
    missing or too old."""
    if not serves(tensor) or str(tensor.dtype).replace('torch.', '') not in DTYPES:
        return False
    reason = unavailable_reason()
    if reason is not None and not _warned[0]:
        _warned[0] = True
        warnings.warn(f'MMTRANSNEXT_FUSED=triton, but {reason}: aggregated attention uses the '
                      'window kernels (or the torch path) instead.', stacklevel=4)
    return reason is None
