"""A third-party config (tests/data/third_party_mask_rcnn.py) that inherits mmdet's Mask
R-CNN and swaps in TransNeXt through custom_imports builds. (It trains with mmdet's own
tools/train.py: tests/test_tools/test_third_party.py.)"""
from pathlib import Path

from mmengine.config import Config

CONFIG = Path(__file__).resolve().parents[1] / 'data' / 'third_party_mask_rcnn.py'


def test_config_builds():
    cfg = Config.fromfile(str(CONFIG))
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == 'TransNeXt'
