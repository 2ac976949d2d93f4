"""The suite's markers (``needs``, ``e2e``), the upstream warning filters, and the session
fixtures shared by several test folders: the golden files, the toy data sets (generated
once per session in temporary folders) and one short classification training.

Plain helpers live in modules beside this file, imported by name: golden_testing.py,
runner_testing.py, tools_testing.py."""
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch

from golden_testing import GOLDEN_CLS, GOLDEN_W3, load_golden

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
    config.addinivalue_line(
        'markers', 'e2e: an end-to-end run of a whole tool (tools/train.py, test.py, the '
        'dist_*.sh scripts, demo, the timm suite, ...): every test under tests/test_tools/, '
        'and the tests elsewhere that launch one; `make test-fast` (-m "not e2e") leaves them out')


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


@pytest.fixture(scope='session')
def golden_w3():
    return load_golden(GOLDEN_W3)


@pytest.fixture(scope='session')
def golden_cls():
    return load_golden(GOLDEN_CLS)


# ---------------------------------------------------------------- toy data (per session)
@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    return tmp_path_factory.mktemp('toy')


@pytest.fixture(scope='session')
def coco128(toy_root):
    from mmtransnext.datasets.toy import make_coco
    make_coco(str(toy_root / 'coco128'), seed=0, num_train=4, num_val=2, img_size=128)
    return toy_root / 'coco128'


@pytest.fixture(scope='session')
def ade64(toy_root):
    from mmtransnext.datasets.toy import make_ade20k
    make_ade20k(str(toy_root / 'ade64'), seed=0, num_train=4, num_val=2, img_size=64)
    return toy_root / 'ade64'


@pytest.fixture(scope='session')
def imagenet64(toy_root):
    from mmtransnext.datasets.toy import make_imagenet
    make_imagenet(str(toy_root / 'imagenet64'), seed=0, num_train_per_class=4,
                  num_val_per_class=2, img_size=64)
    return toy_root / 'imagenet64'


@pytest.fixture
def bad_ade(ade64, tmp_path):
    """A copy of the toy ADE20K whose first training samples are damaged:
    0: zero-byte image, 1: label missing, 2: label of another size, 3: label id 200.
    Returns (root, images, labels)."""
    import cv2
    import numpy as np
    root = tmp_path / 'ade'
    shutil.copytree(ade64, root)
    images = sorted((root / 'images' / 'training').iterdir())
    labels = [root / 'annotations' / 'training' / (p.stem + '.png') for p in images]
    images[0].write_bytes(b'')
    labels[1].unlink()
    cv2.imwrite(str(labels[2]), np.zeros((32, 48), np.uint8))
    label = cv2.imread(str(labels[3]), cv2.IMREAD_UNCHANGED)
    label[10, 10] = 200
    cv2.imwrite(str(labels[3]), label)
    return root, images, labels


# ---------------------------------------------------------------- shared runs
@pytest.fixture(scope='session')
def cls_run(tmp_path_factory, imagenet64):
    """One short classification training (tools/train.py), shared by the cls, load-error
    and safe-load tests; the tests that use it are end-to-end (``e2e``)."""
    from tools_testing import cls_config, train
    tmp = tmp_path_factory.mktemp('cls')
    cfg = cls_config(tmp, imagenet64)
    train(cfg, tmp / 'work')
    ckpt = tmp / 'work' / 'epoch_1.pth'
    assert ckpt.is_file()
    return dict(config=cfg, work_dir=tmp / 'work', checkpoint=ckpt, tmp=tmp)
