"""A third-party config (tests/data/third_party_mask_rcnn.py) that inherits mmdet's Mask
R-CNN and swaps in TransNeXt through custom_imports trains one iteration with mmdet's OWN
tools/train.py (shipped in the mmdet package). (Its model builds:
tests/test_configs/test_third_party_config.py.)"""
import sys
from pathlib import Path

import mmdet
import pytest

from tools_testing import ROOT, run, tool_env

CONFIG = ROOT / 'tests' / 'data' / 'third_party_mask_rcnn.py'


def test_trains_with_mmdet_train_py(tmp_path, coco128):
    mmdet_train = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'train.py'
    if not mmdet_train.is_file():
        pytest.fail(f'mmdet ships no tools/train.py at {mmdet_train}')
    classes = '[circle,diamond,square,triangle]'
    options = [
        f'train_dataloader.dataset.data_root={coco128}/',
        f'train_dataloader.dataset.metainfo.classes={classes}',
        'train_dataloader.dataset.indices=2', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'train_dataloader.dataset.pipeline.2.scale=(128,128)',
        'model.backbone.img_size=128',
        'model.roi_head.bbox_head.num_classes=4', 'model.roi_head.mask_head.num_classes=4',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=10',
        'default_hooks.logger.interval=1',
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',  # train only
    ]
    proc = run([sys.executable, mmdet_train, CONFIG, '--work-dir', tmp_path / 'work',
                '--cfg-options', *options], env=tool_env())
    assert 'Epoch(train) [1][1/1]' in proc.stdout
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
