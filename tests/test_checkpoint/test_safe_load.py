"""mmtransnext.checkpoint.safe_load: mmengine checkpoints load with weights_only=True once the
allow-list is enabled, and arbitrary pickled objects are still refused."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from mmtransnext.checkpoint.safe_load import (enable_safe_load, history_buffer_method,
                                          mmengine_checkpoint_globals, numeric_dtype_classes,
                                          torch_load_allowed)


@pytest.fixture
def no_allow_list():
    """torch's allow-list as a fresh process has it; restored afterwards."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)


@pytest.mark.needs('torch', (2, 6), "torch.load's weights_only default")
@pytest.mark.e2e  # cls_run: a tools/train.py run
def test_needed_without_it_and_enough_with_it(cls_run, no_allow_list):
    ckpt = cls_run['checkpoint']
    # without the allow-list torch refuses the checkpoint mmengine wrote
    with pytest.raises(pickle.UnpicklingError, match='weights_only|Unsupported global'):
        torch.load(ckpt, map_location='cpu', weights_only=True)
    enable_safe_load()
    loaded = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert sorted(loaded) == ['message_hub', 'meta', 'optimizer', 'param_schedulers',
                              'state_dict']
    # mmengine's own loader (what Runner.resume / load_from use) too
    from mmengine.runner.checkpoint import _load_checkpoint
    assert _load_checkpoint(str(ckpt), map_location='cpu')['meta']['epoch'] == 1


@pytest.mark.e2e  # cls_run: a tools/train.py run
def test_checkpoint_contents(cls_run):
    ckpt = torch_load_allowed(cls_run['checkpoint'])  # weights_only + the allow-list
    scalars = ckpt['message_hub']['log_scalars']
    assert isinstance(scalars['train/loss'], HistoryBuffer)
    assert scalars['train/loss'].current() > 0
    assert ckpt['meta']['epoch'] == 1


class Payload:
    def __reduce__(self):
        return (os.system, ('echo unsafe > /dev/null',))


class Custom:
    def __init__(self):
        self.value = 1


class GetAttr:
    """Tries to use the getattr stand-in for something else than HistoryBuffer.min."""
    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


class GetPrivate:
    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.mark.parametrize('obj', [Payload(), Custom(), GetAttr(), GetPrivate()],
                         ids=['os.system', 'custom-class', 'getattr-ndarray',
                              'getattr-private'])
def test_still_refuses_other_objects(tmp_path, obj):
    enable_safe_load()
    path = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'extra': obj}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    with pytest.raises(pickle.UnpicklingError):  # the allow-list route of every torch
        torch_load_allowed(path)


def _name(entry):
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


@pytest.mark.needs('torch', (2, 5), 'torch._weights_only_unpickler.get_globals_in_pkl')
@pytest.mark.e2e  # cls_run: a tools/train.py run
def test_allow_list_is_exact(cls_run):
    """The allow-list holds exactly the globals an mmengine checkpoint needs beyond
    torch's defaults, and builtins.getattr only as the restricted stand-in."""
    from torch._weights_only_unpickler import _get_allowed_globals, get_globals_in_pkl
    with zipfile.ZipFile(cls_run['checkpoint']) as z:
        pkl = next(n for n in z.namelist() if n.endswith('/data.pkl'))
        used = get_globals_in_pkl(io.BytesIO(z.read(pkl)))
    needed = used - set(_get_allowed_globals())
    entries = mmengine_checkpoint_globals()
    dtype_classes = set(numeric_dtype_classes())  # BUILD targets, never GLOBALs
    assert {_name(e) for e in entries if e not in dtype_classes} == needed
    assert all(issubclass(c, np.dtype) and c().kind in 'biuf' for c in dtype_classes)
    stand_in = dict((e[1], e[0]) for e in entries if isinstance(e, tuple))
    assert stand_in == {'builtins.getattr': history_buffer_method}
    assert history_buffer_method(HistoryBuffer, 'mean') is HistoryBuffer.mean
