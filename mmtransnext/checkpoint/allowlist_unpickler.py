"""A pickle module that resolves only allow-listed globals: ``weights_only`` loading for a
torch without ``torch.serialization.add_safe_globals`` (before 2.4; see
:mod:`mmtransnext.compat`).

torch 2.0's own weights_only unpickler cannot be extended and refuses what mmengine
checkpoints hold (objects rebuilt with BUILD, numpy arrays, bf16 dtypes). Passed to
``torch.load(..., pickle_module=...)``, this module's :class:`Unpickler` looks every global
of the file up in the allow-list (torch's own weights_only globals, every torch dtype and
:func:`mmtransnext.checkpoint.safe_load.mmengine_checkpoint_globals`) and refuses anything else
before it is resolved, so nothing outside the list is ever called or built: the same list
that ``add_safe_globals`` enforces on newer torch, enforced by ``find_class``.
"""
import _compat_pickle
import codecs
import collections
import pickle
from typing import Dict, Iterable

import torch


def _pickle_name(entry) -> tuple:
    if isinstance(entry, tuple):  # (object, the name it is pickled under)
        return entry[1], entry[0]
    return f'{entry.__module__}.{entry.__qualname__}', entry


def allowed_by_name(extra: Iterable) -> Dict[str, object]:
    """torch's weights_only globals, every torch dtype, ``codecs.encode`` (how protocol 2
    pickles bytes), set / frozenset / bytearray / Counter and ``extra`` (objects or (object, name)
    pairs), by pickle name."""
    from torch import _weights_only_unpickler
    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    allowed.update({str(dtype): dtype for dtype in vars(torch).values()
                    if isinstance(dtype, torch.dtype)})
    allowed['_codecs.encode'] = codecs.encode
    # plain containers that newer torch's weights_only loading accepts too
    allowed.update({f'builtins.{t.__name__}': t for t in (set, frozenset, bytearray)})
    allowed['collections.Counter'] = collections.Counter  # epoch-based runs' message hub
    allowed.update(_pickle_name(entry) for entry in extra)
    return allowed


class AllowListUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come from :attr:`allowed` only."""

    allowed: Dict[str, object] = {}

    def find_class(self, module: str, name: str):
        # protocol 2 (torch.save's) writes Python 2 names, e.g. __builtin__.getattr
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full_name = f'{module}.{name}'
        if full_name in self.allowed:
            return self.allowed[full_name]
        raise pickle.UnpicklingError(f'Unsupported global: GLOBAL {full_name} is not in the '
                                     'allow-list of weights_only loading')


def pickle_module(allowed: Dict[str, object]):
    """A module-like object for ``torch.load(pickle_module=...)`` over ``allowed``."""
    unpickler = type('Unpickler', (AllowListUnpickler,), {'allowed': allowed})

    class Module:
        Unpickler = unpickler
        UnpicklingError = pickle.UnpicklingError

        @staticmethod
        def load(file, **kwargs):
            return unpickler(file, **kwargs).load()

    return Module


__all__ = ['AllowListUnpickler', 'allowed_by_name', 'pickle_module']
