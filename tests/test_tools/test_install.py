"""Installed like an OpenMMLab package: ``pip wheel --no-build-isolation .`` in the stack's
venv builds a wheel that carries the compiled extension and the configs; installed into a
scratch environment on top of that venv (``pip install --target``, first on PYTHONPATH) and
used from a directory outside the repo, it imports, builds a model from a config that
inherits ``mmtransnext::...``, and its op matches the torch path."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

USER_CONFIG = """\
_base_ = 'mmtransnext::upernet/upernet_transnext_tiny.py'
model = dict(backbone=dict(arch='micro', init_cfg=None, img_size=64))
"""

USE_IT = """\
import sys
import torch
import mmtransnext
from mmengine.config import Config
from mmengine.registry import MODELS
from mmtransnext.ops import ext_loader
from mmtransnext.ops.sliding_window import sliding_window_qk
from mmtransnext.ops.sliding_window_torch import sliding_qk_torch

site = sys.argv[1]
assert mmtransnext.__file__.startswith(site), mmtransnext.__file__
ops = ext_loader.load()
assert ops is not None, ext_loader.load_error()
from mmtransnext import _ext
assert _ext.__file__.startswith(site), _ext.__file__
cfg = Config.fromfile('user_config.py')
assert cfg.model.decode_head.num_classes == 150  # inherited from the shipped config
backbone = MODELS.build(cfg.model.backbone).eval()
with torch.no_grad():
    outs = backbone(torch.randn(1, 3, 64, 64))
assert [o.shape[1] for o in outs] == list(backbone.embed_dims)
q, k = torch.randn(2, 2, 35, 8), torch.randn(2, 2, 35, 8)
rpb = torch.randn(2, 9)
error = (sliding_window_qk(q, k, rpb, 5, 7, 3) - sliding_qk_torch(q, k, rpb, 5, 7, 3))
print('max error', error.nan_to_num(0, 0, 0).abs().max().item())
assert error.nan_to_num(0, 0, 0).abs().max() < 1e-5
print('OK')
"""


def _env():
    """This environment without PYTHONPATH (the checkout must not shadow the install)."""
    return {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}


def _source_tree(dst: Path) -> Path:
    """The checkout's sources copied to ``dst`` (builds, venvs, caches and the compiled
    module left out): the build writes build/ and mmtransnext/.mim there, not here."""
    skip = shutil.ignore_patterns('.git', '.venv*', 'build', '.cache', 'work_dirs', 'data',
                                  '*.so', '__pycache__', '*.egg-info', '.mim', '.pytest_cache')
    shutil.copytree(ROOT, dst, ignore=skip)
    return dst


def test_wheel_carries_extension_and_configs_and_works_outside_the_repo(tmp_path):
    source = _source_tree(tmp_path / 'src')
    wheels = tmp_path / 'wheels'
    build = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps', '-q',
         '-w', str(wheels), str(source)],
        capture_output=True, text=True, env={**_env(), 'FORCE_CUDA': '0', 'MAX_JOBS': '2'})
    assert build.returncode == 0, build.stderr[-3000:]
    wheel, = wheels.glob('mmtransnext-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith('mmtransnext/_ext') and n.endswith('.so') for n in names)
    assert 'mmtransnext/.mim/configs/upernet/upernet_transnext_tiny.py' in names
    assert 'mmtransnext/.mim/configs/_base_/transnext_optim.py' in names

    site = tmp_path / 'site'
    install = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q',
                              '--target', str(site), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'user_config.py').write_text(USER_CONFIG)
    (user / 'use_it.py').write_text(USE_IT)
    run = subprocess.run([sys.executable, 'use_it.py', str(site)], cwd=user,
                         capture_output=True, text=True, env={**_env(), 'PYTHONPATH': str(site)})
    assert run.returncode == 0 and 'OK' in run.stdout, run.stdout + run.stderr[-3000:]

