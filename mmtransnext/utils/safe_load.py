"""Let ``torch.load(weights_only=True)`` read mmengine's own checkpoints.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7 calls
``torch.load`` without the argument, so resuming from a checkpoint that mmengine wrote
fails: besides tensors it pickles the MessageHub's ``HistoryBuffer`` objects, which hold
numpy arrays and their statistics methods, and numpy scalars in the runtime information.
Instead of turning the safety off (``weights_only=False`` would execute whatever a
checkpoint pickles), this module adds exactly those types to torch's allow-list. Anything
else pickled in a file is still refused.

``HistoryBuffer`` pickles its statistics methods (``HistoryBuffer.min`` ...) as
``getattr(HistoryBuffer, 'min')``. ``builtins.getattr`` itself is NOT allowed: the name is
mapped to :func:`history_buffer_method`, which returns those methods and nothing else.
"""
import pickle
import threading
from typing import List

import numpy as np
import torch

_STATISTICS = ('min', 'max', 'current', 'mean')  # HistoryBuffer's built-in ones
_LOCK = threading.Lock()


def _numpy_multiarray():
    # numpy 2 moved numpy.core to numpy._core; pickles name the module they were made with
    core = getattr(np, '_core', None)
    return core.multiarray if core is not None and hasattr(core, 'multiarray') else \
        np.core.multiarray


def history_buffer_method(obj, name: str):
    """What ``getattr`` may do while unpickling: fetch a statistics method
    (min / max / current / mean / registered ones) of ``HistoryBuffer``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = set(_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if (obj is HistoryBuffer and isinstance(name, str) and name in allowed
            and not name.startswith('_') and callable(vars(HistoryBuffer).get(name))):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights_only load: getattr({obj!r}, {name!r}) is not allowed; only the statistics '
        'methods of mmengine\'s HistoryBuffer may be fetched')


def numeric_dtype_classes() -> List[type]:
    """Concrete classes of the bool, integer and floating numpy dtypes."""
    kinds = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
             np.uint32, np.uint64, np.float16, np.float32, np.float64)
    return sorted({type(np.dtype(k)) for k in kinds}, key=lambda c: c.__name__)


def mmengine_checkpoint_globals() -> List[object]:
    """The non-tensor types an mmengine checkpoint (model, optimizer, schedulers,
    MessageHub, meta) pickles, beyond what torch already allows."""
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = _numpy_multiarray()
    return [
        HistoryBuffer,              # MessageHub log_scalars: losses, lr, time, ...
        multiarray._reconstruct,    # numpy arrays inside HistoryBuffer
        np.ndarray,
        np.dtype,
        # np.dtype(...) returns an instance of the concrete dtype class (e.g.
        # numpy.dtypes.Float64DType), whose state is then set: those classes must be
        # allowed too. Only numeric and bool dtypes (no object / void / string).
        *numeric_dtype_classes(),
        multiarray.scalar,          # numpy scalars (e.g. metrics in runtime info)
        (history_buffer_method, 'builtins.getattr'),  # HistoryBuffer.min etc., only
    ]


def enable_safe_load() -> None:
    """Allow exactly :func:`mmengine_checkpoint_globals` in ``weights_only`` loading.
    Idempotent; call it before the Runner loads or resumes a checkpoint."""
    with _LOCK:
        allowed = torch.serialization.get_safe_globals()
        missing = [g for g in mmengine_checkpoint_globals() if g not in allowed]
        if missing:
            torch.serialization.add_safe_globals(missing)


__all__ = ['enable_safe_load', 'mmengine_checkpoint_globals']
