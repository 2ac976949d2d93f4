"""tools/analysis_tools/ms_sweep.py on toy ADE data with random weights."""
import csv
import sys

import pytest
import torch
from PIL import Image

from tools_testing import ROOT, load_tool, run

DEMO_CONFIG = ROOT / 'configs/demo/upernet_transnext_micro_toy-ade20k.py'


@pytest.fixture(scope='module')
def random_checkpoint(tmp_path_factory):
    from mmtransnext.cli.config_loading import build_model, load_config
    model = build_model(load_config(str(DEMO_CONFIG)))
    path = tmp_path_factory.mktemp('ckpt') / 'random.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def test_sweep_writes_one_row_per_size_and_mode(ade64, random_checkpoint, tmp_path):
    root = f'{ade64}/'
    run([sys.executable, ROOT / 'tools/analysis_tools/ms_sweep.py', DEMO_CONFIG,
         random_checkpoint, '--sizes', 48, 80, '--out-dir', tmp_path, '--cfg-options',
         f'test_dataloader.dataset.data_root={root}'])
    with open(tmp_path / 'ms_sweep.csv') as f:
        rows = list(csv.DictReader(f))
    assert [(r['size'], r['mode']) for r in rows] == [
        (s, m) for s in ('48', '80') for m in ('interpolate', 'extrapolate', 'linear')]
    assert all(0 <= float(r['mIoU']) <= 100 for r in rows)
    table = (tmp_path / 'ms_sweep.md').read_text()
    assert '| 80 |' in table and 'linear' in table
    with Image.open(tmp_path / 'ms_sweep.png') as img:
        assert img.size == (600, 400)


def test_resize_for_each_task():
    resize_test_pipeline = load_tool('analysis_tools/ms_sweep').resize_test_pipeline
    cls = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=256, edge='short'),
           dict(type='CenterCrop', crop_size=224), dict(type='PackInputs')]
    assert resize_test_pipeline(cls, 448, 'cls')[1:3] == [
        dict(type='ResizeEdge', scale=512, edge='short'), dict(type='CenterCrop', crop_size=448)]
    cls384 = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=384),
              dict(type='PackInputs')]
    assert resize_test_pipeline(cls384, 320, 'cls')[1] == dict(type='Resize', scale=(320, 320))
    seg = [dict(type='LoadImageFromFile'),
           dict(type='Resize', scale=(2048, 512), keep_ratio=True), dict(type='PackSegInputs')]
    assert resize_test_pipeline(seg, 640, 'seg')[1]['scale'] == (2560, 640)
    with pytest.raises(ValueError, match='no Resize'):
        resize_test_pipeline([dict(type='LoadImageFromFile')], 224, 'seg')
