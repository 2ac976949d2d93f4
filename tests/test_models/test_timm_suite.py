"""timm's own model tests (tests/test_models.py of the installed timm's sdist) on our five models.

The sdist is fetched once with pip into ``.cache/`` (gitignored; MMTRANSNEXT_TIMM_CACHE
overrides the folder) and its tests/ extracted there; nothing of it is in the repository.
A pytest sub-run selects the transnext_* cases with timm's selection lists extended only
as timm extends them for its own models (timm_suite_plugin.py): the model module is added
to FEAT_INTER_FILTERS, the models to EXCLUDE_JIT_FILTERS (not scriptable).
"""
import collections
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import timm

import mmtransnext  # noqa: F401  registers the transnext_* models

# a whole pytest run of timm's suite in a child process (about 3 minutes)
pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get('MMTRANSNEXT_TIMM_CACHE', REPO / '.cache'))
MODEL_NAMES = ('transnext_micro', 'transnext_tiny', 'transnext_small', 'transnext_base',
               'transnext_micro_aaaa')
PRETRAINED_TAGS = 7  # generate_default_cfgs entries: 5 x in1k, 2 x in1k_384
# every test function of timm's file that selects the models, and how many cases it gets
EXPECTED_CASES = {
    'test_model_forward': 5,
    'test_model_backward': 5,
    'test_model_default_cfgs': PRETRAINED_TAGS,
    'test_model_forward_features': 5,
    'test_model_forward_intermediates_features': 5,
    'test_model_forward_intermediates': 5,
    'test_prune_intermediate_layers_contract': 5,
    'test_model_forward_fx': 5,
    'test_model_backward_fx': 5,
}


def fetch_timm_tests() -> Path:
    """tests/test_models.py of the installed timm's sdist, downloaded and extracted once."""
    version = timm.__version__
    root = CACHE / f'timm-{version}'
    test_file = root / 'tests' / 'test_models.py'
    if test_file.is_file():
        return test_file
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f'timm-{version}.tar.gz'
    if not sdist.is_file():
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
               f'timm=={version}', '-d', str(CACHE)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0 and sdist.is_file(), (
            f'could not fetch the timm {version} sdist ({" ".join(cmd)}); with no network, '
            f'put timm-{version}.tar.gz into {CACHE}.\n{res.stdout[-2000:]}{res.stderr[-2000:]}')
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.startswith(f'timm-{version}/tests/')
                   or m.name == f'timm-{version}/pyproject.toml']
        tar.extractall(CACHE, members=members, filter='data')
    return test_file


def _case_counts(junit_xml: Path):
    counts = collections.defaultdict(collections.Counter)
    for case in ET.parse(junit_xml).iter('testcase'):
        function = case.get('name').split('[')[0]
        outcome = 'passed'
        for child in case:
            if child.tag in ('failure', 'error', 'skipped'):
                outcome = child.tag
        counts[function][outcome] += 1
    return counts


def test_timm_model_suite_passes_for_transnext(tmp_path):
    test_file = fetch_timm_tests()
    junit = tmp_path / 'timm_suite.xml'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), str(Path(__file__).parent), os.environ.get('PYTHONPATH', '')]))
    sdist_root = test_file.parents[1]
    cmd = [sys.executable, '-m', 'pytest', str(test_file), '-p', 'timm_suite_plugin',
           '-p', 'no:cacheprovider', '-k', 'transnext', '-q', '-rfEs', '--rootdir',
           str(sdist_root), '-c', str(sdist_root / 'pyproject.toml'), '--junitxml', str(junit)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=sdist_root)
    output = res.stdout[-6000:] + res.stderr[-3000:]
    assert junit.is_file(), output
    counts = _case_counts(junit)
    summary = '\n'.join(f'{f}: {dict(c)}' for f, c in sorted(counts.items()))
    print(f'timm {timm.__version__} tests/test_models.py on transnext_*:\n{summary}')
    assert res.returncode == 0, output
    # the functions of EXPECTED_CASES that this timm's file has (1.0.3 predates
    # test_prune_intermediate_layers_contract); forward and backward are in every version
    source = test_file.read_text()
    expected = {f: n for f, n in EXPECTED_CASES.items() if f'def {f}(' in source}
    assert {'test_model_forward', 'test_model_backward'} <= expected.keys()
    assert {f: dict(c) for f, c in counts.items()} == {
        f: {'passed': n} for f, n in expected.items()}, summary
    assert set(MODEL_NAMES) <= set(timm.list_models('transnext_*'))
