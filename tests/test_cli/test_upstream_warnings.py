"""The known upstream deprecation warnings are filtered by message AND module in every
tool's entry point; the same text from another module, and every other warning, shows."""
import ast
import subprocess
import sys
import warnings

import pytest

from tools_testing import ROOT, TOOLS, tool_env
from mmtransnext.cli.upstream_warnings import UPSTREAM_WARNINGS, filter_upstream_warnings

PKG = 'pkg_resources is deprecated as an API. See https://setuptools.pypa.io/'
ENTRY_POINTS = sorted(p for p in TOOLS.rglob('*.py') if p.parent.name != '__pycache__')


def _shown(message, module, category=UserWarning):
    """Whether a warning attributed to ``module`` passes the filters."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        filter_upstream_warnings()
        warnings.warn_explicit(message, category, f'{module.replace(".", "/")}.py', 1,
                               module=module)
    return bool(caught)


@pytest.mark.parametrize('module', ['mmengine.utils.package_utils', 'mmcv', 'importlib'])
def test_upstream_pkg_resources_hidden(module):
    assert not _shown(PKG, module)


def test_upstream_mmseg_and_torch_hidden():
    assert not _shown('``build_loss`` would be deprecated soon, please use ...',
                      'mmseg.models.builder')
    assert not _shown('`torch.jit.script` is deprecated. Please switch to `torch.compile`',
                      'torch.jit._script', DeprecationWarning)


@pytest.mark.parametrize('message, module', [
    (PKG, 'my_project.train'),             # the same text from a user's module
    (PKG, 'mmengine_fork'),                # a name that only starts like an upstream one
    ('my own warning', 'mmengine.config'),  # another text from an upstream module
    ('``build_loss`` would be deprecated soon', 'mmseg.models.losses'),  # another module
])
def test_other_warnings_shown(message, module):
    assert _shown(message, module)


def test_every_tool_filters_first():
    """Each entry point calls filter_upstream_warnings() right after its docstring."""
    for path in ENTRY_POINTS:
        body = ast.parse(path.read_text()).body
        first = [ast.unparse(node) for node in body[1:3]]
        assert first == ['from mmtransnext.cli.upstream_warnings import '
                         'filter_upstream_warnings', 'filter_upstream_warnings()'], path


def _fresh_process(filtered):
    """stderr of a process that, as an entry point, filters (or not), then uses mmengine
    the way Config does (is_installed imports and reloads pkg_resources) and raises a
    user's warning with the same text from a module of its own."""
    code = '\n'.join([
        'import warnings',
        'from mmtransnext.cli.upstream_warnings import filter_upstream_warnings',
        'filter_upstream_warnings()' if filtered else '',
        'from mmengine.utils import is_installed',
        'is_installed("mmseg")',
        f'warnings.warn_explicit({PKG!r}, UserWarning, "user.py", 1, module="user")'])
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=tool_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [line for line in proc.stderr.splitlines() if 'pkg_resources is deprecated' in line]


def test_fresh_process_output():
    unfiltered = _fresh_process(False)
    assert any(not line.startswith('user.py') for line in unfiltered), unfiltered  # control
    assert [line[:9] for line in _fresh_process(True)] == ['user.py:1']


def test_entries_are_narrow():
    for category, message, module in UPSTREAM_WARNINGS:
        assert issubclass(category, Warning) and message and module
        assert ':' not in message + module  # pytest's filterwarnings lines split on ':'
