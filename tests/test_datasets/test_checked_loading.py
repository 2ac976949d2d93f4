"""Bad data names the file where it is read: an image that does not decode, a missing
label map, a label map of another size than its image, label ids outside the classes;
the checked loaders replace the plain ones in a config's pipelines (nested TTA ones too)."""
import copy
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from mmtransnext.datasets.checked_loading import (BadDataError, CheckedLoadImageFromFile,
                                                   use_checked_loading, use_checked_loading_in)
from mmtransnext.datasets.seg_label_checks import CheckedLoadSegAnnotations
from mmtransnext.registry import register_task_modules
from tools_testing import CONFIGS, load_tool

UPERNET = CONFIGS / 'upernet/upernet_transnext_tiny.py'


@pytest.fixture(autouse=True, scope='module')
def seg_task_modules():
    """What the tools register once they know a segmentation config."""
    register_task_modules('seg')


def _load(image, label, **kw):
    results = dict(img_path=str(image), seg_map_path=str(label), seg_fields=[],
                   reduce_zero_label=True)
    results = CheckedLoadImageFromFile()(results)
    return CheckedLoadSegAnnotations(reduce_zero_label=True, **kw)(results)


def test_each_problem_names_the_file(bad_ade, tmp_path):
    _, images, labels = bad_ade
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
