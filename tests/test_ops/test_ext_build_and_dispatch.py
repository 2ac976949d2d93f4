"""The extension is built (with CUDA kernels wherever nvcc exists), the single dispatch point
picks the right implementation, and bad input fails with a clear error on every path."""
import os
import shutil
import warnings

import pytest
import torch

from mmtransnext.ops import ext_loader, sliding_window
from mmtransnext.ops import sliding_window_av, sliding_window_qk
from mmtransnext.ops.sliding_window_torch import sliding_av_torch, sliding_qk_torch
from ops_testing import EXT, WITH_OPS, make_inputs, requires_ext


def _nvcc():
    cuda_home = os.environ.get('CUDA_HOME', '/usr/local/cuda')
    for path in (shutil.which('nvcc'), os.path.join(cuda_home, 'bin', 'nvcc'),
                 '/usr/local/cuda/bin/nvcc'):
        if path and os.access(path, os.X_OK):
            return path
    return None


def _nvcc_matches_torch():
    """Whether this nvcc can build for this torch: torch's cpp_extension refuses a CUDA
    major version other than the one torch was built with (make test-oldest: torch 2.0.1 is
    CUDA 11.7, this machine's nvcc 13.0, so that leg builds the CPU kernels only)."""
    import re
    import subprocess
    if _nvcc() is None or torch.version.cuda is None:
        return False
    found = re.search(r'release (\d+)', subprocess.run([_nvcc(), '--version'],
                                                       capture_output=True, text=True).stdout)
    return found is not None and found.group(1) == torch.version.cuda.split('.')[0]


# -- build -----------------------------------------------------------------------------------

@pytest.mark.skipif(not WITH_OPS, reason='MMTRANSNEXT_WITH_OPS=0: built without the extension')
def test_extension_is_built():
    assert EXT is not None, f'mmtransnext._ext does not import: {ext_loader.load_error()}'
    for name in ('sliding_qk', 'sliding_qk_backward', 'sliding_av', 'sliding_av_backward'):
        assert hasattr(torch.ops.mmtransnext, name)


@pytest.mark.skipif(not _nvcc_matches_torch(),
                    reason='no nvcc of the CUDA major version torch was built with: CUDA '
                           'kernels not built')
@pytest.mark.skipif(not WITH_OPS, reason='MMTRANSNEXT_WITH_OPS=0: built without the extension')
def test_cuda_kernels_built_where_nvcc_exists():
    """The Makefile builds with FORCE_CUDA=1 when nvcc exists, GPU or not."""
    from mmtransnext import _ext
    assert _ext.with_cuda(), (f'nvcc exists ({_nvcc()}) but mmtransnext._ext has no CUDA '
                              'kernels: rebuild with FORCE_CUDA=1 (`make clean-ext setup`)')
    assert ext_loader.has_cuda()


# -- dispatch ---------------------------------------------------------------------------------

def _args(ks=3):
    x = make_inputs(1, 2, 5, 6, 4, ks)
    return x, (5, 6, ks)


@pytest.fixture
def spies(monkeypatch):
    """Counts calls of the torch implementations behind the dispatch point."""
    calls = {'qk': 0, 'av': 0}

    def qk(*a):
        calls['qk'] += 1
        return sliding_qk_torch(*a)

    def av(*a):
        calls['av'] += 1
        return sliding_av_torch(*a)

    monkeypatch.setattr(sliding_window, 'sliding_qk_torch', qk)
    monkeypatch.setattr(sliding_window, 'sliding_av_torch', av)
    return calls


@pytest.fixture
def missing_ext(monkeypatch):
    monkeypatch.setattr(ext_loader, '_state', {
        'tried': True, 'ops': None, 'cuda': False,
        'error': "No module named 'mmtransnext._ext' (simulated)"})
    monkeypatch.setattr(sliding_window, '_warned', False)


def _call_both(x, geo):
    a = sliding_window_qk(x['q'], x['k'], x['rpb'], *geo)
    return a, sliding_window_av(x['w'], x['v'], *geo)


def test_forced_torch_uses_torch_path(monkeypatch, spies):
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'torch')
    _call_both(*_args())
    assert spies == {'qk': 1, 'av': 1}


@requires_ext
@pytest.mark.parametrize('impl', ['ext', 'auto'])
def test_ext_used_when_built(monkeypatch, spies, impl):
    monkeypatch.setenv('MMTRANSNEXT_OPS', impl)
    x, geo = _args()
    qk, av = _call_both(x, geo)
    assert spies == {'qk': 0, 'av': 0}
    torch.testing.assert_close(qk, sliding_qk_torch(x['q'], x['k'], x['rpb'], *geo))
    torch.testing.assert_close(av, sliding_av_torch(x['w'], x['v'], *geo))


def test_forced_ext_missing_raises_with_fix(monkeypatch, missing_ext):
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'ext')
    x, geo = _args()
    with pytest.raises(ImportError, match=r'MMTRANSNEXT_OPS=ext.*simulated.*make setup'):
        sliding_window_qk(x['q'], x['k'], x['rpb'], *geo)
    with pytest.raises(ImportError, match=r'pip install --no-build-isolation -e \.'):
        sliding_window_av(x['w'], x['v'], *geo)


def test_auto_missing_ext_warns_once(monkeypatch, missing_ext, spies):
    monkeypatch.delenv('MMTRANSNEXT_OPS', raising=False)
    x, geo = _args()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for _ in range(3):
            _call_both(x, geo)
    msgs = [str(w.message) for w in caught if 'mmtransnext._ext' in str(w.message)]
    assert len(msgs) == 1, msgs
    assert 'simulated' in msgs[0] and 'make setup' in msgs[0]
    assert spies == {'qk': 3, 'av': 3}


def test_bad_impl_name(monkeypatch):
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'cuda')
    x, geo = _args()
    with pytest.raises(ValueError, match='MMTRANSNEXT_OPS must be one of'):
        sliding_window_qk(x['q'], x['k'], x['rpb'], *geo)


# -- bad input: a clear error from the Python entry points and from the raw ops -------------

def _qk_cases():
    x = make_inputs(1, 2, 5, 6, 4, 3)
    q, k, rpb = x['q'], x['k'], x['rpb']
    return {
        'even window': ((q, k, torch.zeros(2, 16), 5, 6, 4), r'odd'),
        'head_dim': ((q, torch.zeros(1, 2, 30, 3), rpb, 5, 6, 3),
                     r'head_dim of q \(4\) and k \(3\) differ'),
        'H*W != N': ((q, k, rpb, 5, 5, 3), r'H\*W = 5\*5 = 25 but the tensors hold N = 30'),
        'mixed dtypes': ((q, k.double(), rpb, 5, 6, 3), r'mixed dtypes'),
        'devices': ((q, k.to('meta'), rpb, 5, 6, 3), r'different devices'),
    }


def _av_cases():
    x = make_inputs(1, 2, 5, 6, 4, 3)
    w, v = x['w'], x['v']
    return {
        'even window': ((torch.zeros(1, 2, 30, 16), v, 5, 6, 4), r'odd'),
        'window entries': ((w, v, 5, 6, 5), r'attn has 9 window entries, kernel_size 5 needs 25'),
        'H*W != N': ((w, v, 6, 6, 3), r'H\*W = 6\*6 = 36 but the tensors hold N = 30'),
        'mixed dtypes': ((w.half(), v, 5, 6, 3), r'mixed dtypes'),
        'devices': ((w.to('meta'), v, 5, 6, 3), r'different devices'),
    }


ERRORS = (ValueError, TypeError, RuntimeError)


@pytest.mark.parametrize('case', list(_qk_cases()))
def test_qk_bad_input(case):
    args, msg = _qk_cases()[case]
    with pytest.raises(ERRORS, match=msg):
        sliding_window_qk(*args)


@pytest.mark.parametrize('case', list(_av_cases()))
def test_av_bad_input(case):
    args, msg = _av_cases()[case]
    with pytest.raises(ERRORS, match=msg):
        sliding_window_av(*args)


@requires_ext
@pytest.mark.parametrize('case', list(_qk_cases()))
def test_qk_op_bad_input(case):
    """torch.ops.mmtransnext.sliding_qk checks the same (C++ TORCH_CHECK; the fake kernel
    for a meta tensor)."""
    args, msg = _qk_cases()[case]
    with pytest.raises(ERRORS, match=msg):
        torch.ops.mmtransnext.sliding_qk(*args)


@requires_ext
@pytest.mark.parametrize('case', list(_av_cases()))
def test_av_op_bad_input(case):
    args, msg = _av_cases()[case]
    with pytest.raises(ERRORS, match=msg):
        torch.ops.mmtransnext.sliding_av(*args)


@requires_ext
def test_backward_op_bad_grad():
    x = make_inputs(1, 2, 5, 6, 4, 3)
    with pytest.raises(RuntimeError, match=r'grad_attn must have shape'):
        torch.ops.mmtransnext.sliding_qk_backward(x['q'], x['q'], x['k'], 5, 6, 3)
    with pytest.raises(RuntimeError, match=r'mixed dtypes'):
        torch.ops.mmtransnext.sliding_av_backward(x['v'].double(), x['w'], x['v'], 5, 6, 3)
