"""Classification end to end: a micro ImageClassifier trained one epoch on toy
ImageNet folders, tested for top-1 (also with flip TTA and a pickle dump)."""
import pickle

import torch

from tools_testing import test_tool
from tools_testing import cls_run, imagenet64, toy_root  # noqa: F401 (fixtures)
from mmtransnext.utils.safe_load import enable_safe_load


def test_train_test(cls_run):
    enable_safe_load()
    ckpt = torch.load(cls_run['checkpoint'], map_location='cpu', weights_only=True)
    keys = ckpt['state_dict'].keys()
    assert 'head.fc.weight' in keys and 'backbone.block1.0.attn.temperature' in keys
    out = cls_run['tmp'] / 'preds.pkl'
    metrics, _ = test_tool(cls_run['config'], cls_run['checkpoint'], cls_run['tmp'] / 'test',
                           '--out', out, '--show-dir', 'vis')
    assert len(list((cls_run['tmp'] / 'test' / 'vis').glob('*.png'))) == 8
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 8  # 4 classes x 2 val images


def test_aug_test(cls_run):
    metrics, proc = test_tool(cls_run['config'], cls_run['checkpoint'],
                              cls_run['tmp'] / 'tta', '--aug-test', '--pos-bias', 'linear')
    assert "type='AverageClsScoreTTA'" in proc.stdout
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
