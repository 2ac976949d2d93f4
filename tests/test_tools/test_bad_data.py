"""Bad data names the file where it is read: an image that does not decode, a missing
label map, a label map of another size than its image, label ids outside the classes;
and tools/train.py --check-data lists all of them before training."""
import copy
import re
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from mmengine.config import Config

import mmtransnext.datasets.seg_label_checks  # noqa: F401 (registers it)
from mmtransnext.datasets.checked_loading import (BadDataError, CheckedLoadImageFromFile,
                                                   use_checked_loading, use_checked_loading_in)
from mmtransnext.datasets.seg_label_checks import CheckedLoadSegAnnotations
from tools_testing import CONFIGS, load_tool, upernet_config
from tools_testing import ade64, toy_root  # noqa: F401 (fixtures)

UPERNET = CONFIGS / 'upernet/upernet_transnext_tiny.py'


@pytest.fixture
def ade(ade64, tmp_path):
    """A copy of the toy ADE20K whose first training samples are damaged:
    0: zero-byte image, 1: label missing, 2: label of another size, 3: label id 200."""
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


def _load(image, label, **kw):
    results = dict(img_path=str(image), seg_map_path=str(label), seg_fields=[],
                   reduce_zero_label=True)
    results = CheckedLoadImageFromFile()(results)
    return CheckedLoadSegAnnotations(reduce_zero_label=True, **kw)(results)


def test_each_problem_names_the_file(ade, tmp_path):
    _, images, labels = ade
    with pytest.raises(BadDataError, match=rf'{images[0]}: the image cannot be loaded: the '
                       r'file is empty \(0 bytes\)'):
        _load(images[0], labels[0])
    junk = tmp_path / 'junk.jpg'
    junk.write_bytes(b'not an image at all')
    with pytest.raises(BadDataError, match=rf'{junk}: .*it does not decode as an image'):
        _load(junk, labels[0])
    with pytest.raises(BadDataError, match=rf'{labels[1]}: the label map cannot be loaded: '
                       'the file does not exist'):
        _load(images[1], labels[1])
    with pytest.raises(BadDataError, match=rf'{labels[2]}: the label map is 32x48 \(h x w\) '
                       rf'but its image {images[2]} is 64x64'):
        _load(images[2], labels[2])
    with pytest.raises(BadDataError, match=rf'{labels[3]}: label id\(s\) 199 after '
                       r'reduce_zero_label are outside the 150 classes \(0..149; 255'):
        _load(images[3], labels[3], num_classes=150)
    _load(images[3], labels[3])  # without num_classes the ids are not checked
    assert _load(images[3], labels[3], num_classes=200)['gt_seg_map'].shape == (64, 64)


def test_the_checked_loaders_replace_the_plain_ones():
    cfg = Config.fromfile(str(UPERNET))
    use_checked_loading(cfg, 'seg')
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert types[:2] == ['CheckedLoadImageFromFile', 'CheckedLoadSegAnnotations']
    label = cfg.test_dataloader.dataset.pipeline[2]
    assert label.num_classes == 150 and label.ignore_index == 255 and label.reduce_zero_label
    test_py = load_tool('test')
    cfg, _ = test_py.build_cfg(test_py.parse_args([str(UPERNET), 'c.pth', '--aug-test']))
    runner = SimpleNamespace(_test_dataloader=copy.deepcopy(cfg.test_dataloader))
    use_checked_loading_in(runner, cfg, 'seg', ['test_dataloader'])
    pipeline = runner._test_dataloader.dataset.pipeline
    assert pipeline[0].type == 'CheckedLoadImageFromFile'
    nested = [t.type for step in pipeline[-1].transforms for t in step]
    assert 'CheckedLoadSegAnnotations' in nested and 'LoadAnnotations' not in nested
    assert cfg.test_dataloader.dataset.pipeline[0].type == 'LoadImageFromFile'  # cfg as it was


def test_training_names_the_bad_file_and_keeps_the_plain_config(ade, tmp_path, monkeypatch):
    """The error is raised where the file is read; the config dumped into the run folder
    (and saved in checkpoints) keeps LoadImageFromFile, which inferencers look for."""
    monkeypatch.setenv('LOCAL_RANK', '0')
    root, images, labels = ade
    train_py = load_tool('train')
    work = tmp_path / 'work'
    bad = '|'.join(re.escape(str(p)) for p in (images[0], labels[1], labels[2], labels[3]))
    with pytest.raises(BadDataError, match=f'^({bad}): '):
        train_py.main([str(upernet_config(tmp_path, root)), '--work-dir', str(work)])
    dumped, = work.glob('*.py')
    assert "type='LoadImageFromFile'" in dumped.read_text()
    assert 'CheckedLoad' not in dumped.read_text()


def test_check_data_lists_every_bad_file(ade, tmp_path, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')
    root, images, labels = ade
    config = upernet_config(tmp_path, root)
    train_py = load_tool('train')
    with pytest.raises(BadDataError) as info:
        train_py.main([str(config), '--work-dir', str(tmp_path / 'work'), '--check-data'])
    message = str(info.value)
    assert message.startswith('--check-data found 4 problem(s)')
    for path in (images[0], labels[1], labels[2], labels[3]):
        assert f'train_dataloader: {path}: ' in message
    assert not (tmp_path / 'work' / 'iter_2.pth').exists()
