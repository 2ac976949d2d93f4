"""Loads mmtransnext._ext once; remembers why it failed so errors can say so.

Loading imports the compiled module (it defines the torch.ops.mmtransnext schemas and the
CPU / CUDA kernels) and then :mod:`.ext_registration` (fake kernels and autograd formulas).
"""
_state = {'tried': False, 'ops': None, 'error': None, 'cuda': False}


def load():
    """torch.ops.mmtransnext if the extension imports, else None (see :func:`load_error`)."""
    if not _state['tried']:
        _state['tried'] = True
        try:
            import torch

            from mmtransnext import _ext  # registers torch.ops.mmtransnext
        except ImportError as e:
            _state['error'] = str(e)
        else:
            from . import ext_registration  # noqa: F401  (fake kernels + autograd)
            _state['cuda'] = bool(_ext.with_cuda())
            _state['ops'] = torch.ops.mmtransnext
    return _state['ops']


def load_error():
    load()
    return _state['error']


def has_cuda() -> bool:
    """Whether the extension loaded and has CUDA kernels (cached: no call into the module,
    so torch.compile traces it without a graph break)."""
    load()
    return _state['cuda']
