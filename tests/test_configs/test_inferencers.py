"""The OpenMMLab inferencers build this package's configs and predict on an image:
mmdet's DetInferencer, mmseg's MMSegInferencer, mmpretrain's get_model and
ImageClassificationInferencer (TransNeXt-micro, random weights, no checkpoint)."""
import mmcv
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from tools_testing import CONFIGS, dino_config, upernet_config


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / 'image.png'
    mmcv.imwrite(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), str(path))
    return str(path)


def test_det_inferencer(tmp_path, image):
    from mmdet.apis import DetInferencer
    config = dino_config(tmp_path, tmp_path, scales=5)  # no data set is built
    inferencer = DetInferencer(model=str(config), weights=None, device='cpu')
    assert type(inferencer.model.backbone).__name__ == 'TransNeXt'
    result = inferencer(image, return_datasamples=True)
    pred = result['predictions'][0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) == len(pred.scores) > 0
    assert torch.all(pred.labels < 4)


def test_seg_inferencer(tmp_path, image):
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(model=str(upernet_config(tmp_path, tmp_path)), weights=None,
                                 device='cpu')
    assert type(inferencer.model.backbone).__name__ == 'TransNeXt'
    result = inferencer(image, return_datasamples=True)
    assert tuple(result.pred_sem_seg.data.shape) == (1, 96, 128)  # at the image's size


def test_pretrain_get_model_and_inferencer(image):
    from mmpretrain import ImageClassificationInferencer, get_model
    config = str(CONFIGS / 'transnext/transnext_tiny.py')
    micro = dict(backbone=dict(arch='micro', img_size=64), head=dict(in_channels=384))
    model = get_model(config, pretrained=False, device='cpu', **micro)
    assert type(model.backbone).__name__ == 'TransNeXt' and model.backbone.embed_dims[0] == 48
    with torch.no_grad():
        scores = model(torch.rand(1, 3, 64, 64), mode='tensor')
    assert scores.shape == (1, 1000)

    # mmpretrain's inferencer builds its pipeline in the current default scope (which an
    # mmdet / mmseg inferencer earlier in this process may have set); a user's own
    # process starts without one
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(model=model, pretrained=False,
                                                   device='cpu')
        result, = inferencer(image)
    assert 0 <= result['pred_label'] < 1000
    assert len(result['pred_scores']) == 1000
