import importlib.util
import os
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / 'data'
GOLDEN_W3 = DATA / 'transnext_reference_w3.pth'
GOLDEN_CLS = DATA / 'transnext_cls_reference.pth'

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_configure(config):
    """The ``needs`` marker, and the tools' filters of known upstream warnings, for the in-process tests too (pytest
    sets up the warning filters anew for every phase, from its ini lines). The list is
    loaded by path: importing it through the package would import mmcv and timm, which
    raise some of them, before the filters exist."""
    path = Path(__file__).parents[1] / 'mmtransnext/cli/upstream_warnings.py'
    spec = importlib.util.spec_from_file_location('_upstream_warnings', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for line in module.filterwarnings_lines():
        config.addinivalue_line('filterwarnings', line)
    config.addinivalue_line(
        'markers', 'needs(package, version, feature): skip where the package is older (make '
        'test-oldest), with a reason naming the feature and the version it needs')


def pytest_runtest_setup(item):
    """Skip a test marked ``needs('torch', (2, 4), 'torch.library.opcheck')`` where the
    installed package is older."""
    from importlib.metadata import version as installed_version

    from mmtransnext.compat import version_tuple
    for mark in item.iter_markers('needs'):
        package, version, feature = mark.args
        found = installed_version(package)
        if version_tuple(found) < tuple(version):
            pytest.skip(f'{feature} needs {package} >= {".".join(map(str, version))} '
                        f'(this is {found})')


def load_golden(path):
    """Golden file with weights and inputs cast to float32 (stored exactly as float16)."""
    g = torch.load(path, map_location='cpu')
    g['state_dict'] = {k: v.float() for k, v in g['state_dict'].items()}
    for case in g['cases']:
        case['input'] = case['input'].float()
    return g


def golden_arch(arch):
    """The golden file's arch description as a TransNeXt arch dict."""
    return dict(embed_dims=arch['embed_dims'], num_heads=arch['num_heads'],
                depths=arch['depths'], mlp_ratios=arch['mlp_ratios'],
                sr_ratios=arch['sr_ratios'], window_size=arch['window_size'])


@pytest.fixture(scope='session')
def golden_w3():
    return load_golden(GOLDEN_W3)


@pytest.fixture(scope='session')
def golden_cls():
    return load_golden(GOLDEN_CLS)
