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

:func:`load_checkpoint_file` is the one reader of local checkpoint files: it names a
missing file, a directory, a file that is no checkpoint (junk, truncated) and a pickle
with objects outside the allow-list, without ever suggesting ``weights_only=False``.
:func:`enable_safe_load` installs it as mmengine's loader of local paths, so
``Runner.load_checkpoint`` / ``resume``, ``mmengine.runner.load_checkpoint`` and
``init_cfg=dict(type='Pretrained')`` all read through it; importing ``mmtransnext`` calls
:func:`enable_safe_load`.
"""
import os
import os.path as osp
import pickle
import re
import threading
import zipfile
from typing import List

import numpy as np
import torch

from mmtransnext.compat import HAS_LOAD_MMAP, HAS_SAFE_GLOBALS

from .allowlist_unpickler import allowed_by_name, pickle_module

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


class NotACheckpointError(ValueError):
    """A file that torch.save did not write (or only partly wrote)."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint pickles an object outside the allow-list; it is not loaded."""


def _pth_files(folder: str, shown: int = 5) -> str:
    names = sorted(n for n in os.listdir(folder) if n.endswith(('.pth', '.pt', '.ckpt')))
    if not names:
        return 'it holds no .pth file'
    more = f' (+{len(names) - shown} more)' if len(names) > shown else ''
    return 'e.g. ' + ', '.join(osp.join(folder, n) for n in names[:shown]) + more


def check_checkpoint_file(filename: str) -> str:
    """Raise a clear error unless ``filename`` is an existing file in torch.save's format
    (zip archive with a data.pkl, or the legacy pickle format). Reads a few bytes only.
    Returns the expanded path."""
    path = osp.expanduser(str(filename))
    if osp.isdir(path):
        raise IsADirectoryError(f'checkpoint {path} is a directory, not a checkpoint file; '
                                f'pass a file inside it ({_pth_files(path)})')
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(n.endswith('data.pkl') for n in archive.namelist()):
                return path
        raise NotACheckpointError(
            f'{path} is a zip archive but not a PyTorch checkpoint (no data.pkl inside)')
    with open(path, 'rb') as f:
        head = f.read(2)
    if head[:1] == b'\x80' and head[1:2] in (b'\x02', b'\x03', b'\x04', b'\x05'):
        return path  # torch.save(..., _use_new_zipfile_serialization=False)
    raise NotACheckpointError(
        f'{path} is not a PyTorch checkpoint ({osp.getsize(path)} bytes, neither '
        "torch.save's zip format nor its legacy format): a wrong file, or a truncated "
        'download or save; download or save it again')


def torch_load_allowed(path: str, map_location='cpu', mmap: bool = False):
    """``torch.load(path, weights_only=True)`` with the allow-list, on every supported torch:
    torch >= 2.4 through ``add_safe_globals``; older torch through
    :mod:`.allowlist_unpickler` (the same list, enforced by the unpickler's ``find_class``).
    ``mmap`` where torch has it (>= 2.1). The allow-list is installed when mmtransnext is
    imported (:func:`enable_safe_load`, from mmtransnext/registry.py)."""
    if HAS_SAFE_GLOBALS:
        extra = dict(mmap=True) if mmap and HAS_LOAD_MMAP else {}
        return torch.load(path, map_location=map_location, weights_only=True, **extra)
    allowed = allowed_by_name(mmengine_checkpoint_globals())
    return torch.load(path, map_location=map_location, pickle_module=pickle_module(allowed))


def load_checkpoint_file(filename: str, map_location='cpu'):
    """``torch.load(filename, weights_only=True)`` with the allow-list and clear errors."""
    path = check_checkpoint_file(filename)
    try:
        return torch_load_allowed(path, map_location=map_location)
    except pickle.UnpicklingError as e:
        found = re.search(r'GLOBAL ([\w.]+)', str(e))
        what = f'the global {found.group(1)}' if found else 'an object'
        raise UnsafeCheckpointError(
            f'{path} pickles {what}, which is neither a tensor nor one of the types '
            'torch.save and mmengine put in checkpoints; it was not loaded (loading it '
            'would run code from the file). Re-save its tensors with torch.save, or '
            'check where the file comes from.') from None
    except (RuntimeError, EOFError) as e:
        if isinstance(e, RuntimeError) and not any(
                sign in str(e) for sign in ('PytorchStreamReader', 'magic number')):
            raise  # not about the file (e.g. a CUDA map_location without CUDA)
        raise NotACheckpointError(f'{path} could not be read as a checkpoint ({e}); it is '
                                  'damaged or truncated: download or save it again') from None


def enable_safe_load() -> None:
    """Allow exactly :func:`mmengine_checkpoint_globals` in ``weights_only`` loading and
    make :func:`load_checkpoint_file` mmengine's loader of local paths. Idempotent."""
    from mmengine.runner.checkpoint import CheckpointLoader
    with _LOCK:
        if HAS_SAFE_GLOBALS:  # older torch: torch_load_allowed passes the list itself
            allowed = torch.serialization.get_safe_globals()
            missing = [g for g in mmengine_checkpoint_globals() if g not in allowed]
            if missing:
                torch.serialization.add_safe_globals(missing)
        if CheckpointLoader._schemes.get('') is not load_checkpoint_file:
            CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file,
                                             force=True)


__all__ = ['NotACheckpointError', 'UnsafeCheckpointError', 'check_checkpoint_file',
           'enable_safe_load', 'load_checkpoint_file', 'mmengine_checkpoint_globals',
           'torch_load_allowed']
