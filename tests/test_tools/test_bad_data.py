"""Bad data names the file where it is read, through tools/train.py: the error of a
training run, and --check-data listing all of them before training. (The checked loaders
on their own: tests/test_datasets/test_checked_loading.py.)"""
import re

import pytest

from mmtransnext.datasets.checked_loading import BadDataError
from tools_testing import load_tool, upernet_config


def test_training_names_the_bad_file_and_keeps_the_plain_config(bad_ade, tmp_path, monkeypatch):
    """The error is raised where the file is read; the config dumped into the run folder
    (and saved in checkpoints) keeps LoadImageFromFile, which inferencers look for."""
    monkeypatch.setenv('LOCAL_RANK', '0')
    root, images, labels = bad_ade
    train_py = load_tool('train')
    work = tmp_path / 'work'
    bad = '|'.join(re.escape(str(p)) for p in (images[0], labels[1], labels[2], labels[3]))
    with pytest.raises(BadDataError, match=f'^({bad}): '):
        train_py.main([str(upernet_config(tmp_path, root)), '--work-dir', str(work)])
    dumped, = work.glob('*.py')
    assert "type='LoadImageFromFile'" in dumped.read_text()
    assert 'CheckedLoad' not in dumped.read_text()


def test_check_data_lists_every_bad_file(bad_ade, tmp_path, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')
    root, images, labels = bad_ade
    config = upernet_config(tmp_path, root)
    train_py = load_tool('train')
    with pytest.raises(BadDataError) as info:
        train_py.main([str(config), '--work-dir', str(tmp_path / 'work'), '--check-data'])
    message = str(info.value)
    assert message.startswith('--check-data found 4 problem(s)')
    for path in (images[0], labels[1], labels[2], labels[3]):
        assert f'train_dataloader: {path}: ' in message
    assert not (tmp_path / 'work' / 'iter_2.pth').exists()
