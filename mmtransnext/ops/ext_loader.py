"""Loads mmtransnext._ext once; remembers why it failed so errors can say so."""
_state = {'tried': False, 'ops': None, 'error': None}


def load():
    if not _state['tried']:
        _state['tried'] = True
        try:
            import torch

            from mmtransnext import _ext  # noqa: F401  (registers torch.ops.mmtransnext)
            _state['ops'] = torch.ops.mmtransnext
        except ImportError as e:
            _state['error'] = str(e)
    return _state['ops']


def load_error():
    load()
    return _state['error']


def has_cuda() -> bool:
    if load() is None:
        return False
    from mmtransnext import _ext
    return bool(_ext.with_cuda())
