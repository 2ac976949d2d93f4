"""Classification end to end: a micro ImageClassifier trained one epoch on toy
ImageNet folders, tested for top-1 (also with flip TTA and a pickle dump)."""
import math
import pickle

import torch

from tools_testing import cls_config, test_tool, train
from mmtransnext.checkpoint.safe_load import enable_safe_load, torch_load_allowed


def test_train_test(cls_run):
    enable_safe_load()
    ckpt = torch_load_allowed(cls_run['checkpoint'])
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


BF16_PROBE = '''
custom_imports = dict(imports=['mmtransnext', 'dtype_probe_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='DtypeProbeHook')]
'''


def test_bf16_training_on_cpu(tmp_path, imagenet64):
    """--bf16 without a GPU: BF16OptimWrapper runs the forward passes under bf16 autocast
    (the window ops included) and keeps fp32 weights in the checkpoint."""
    cfg = cls_config(tmp_path, imagenet64, deterministic=True, name='cls_bf16.py',
                     extra=BF16_PROBE)
    work = tmp_path / 'work'
    proc = train(cfg, work, '--bf16', '--cfg-options', 'train_cfg.max_iters=2')
    assert "type='BF16OptimWrapper'" in proc.stdout
    assert (work / 'train_dtypes.txt').read_text().split() == ['torch.bfloat16'] * 2
    ckpt = torch.load(work / 'iter_2.pth', map_location='cpu', weights_only=False)
    weights = ckpt['state_dict']
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    losses = [float(line.split('loss: ')[1].split()[0]) for line in proc.stdout.splitlines()
              if 'Iter(train)' in line and 'loss: ' in line]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    metrics, _ = test_tool(cfg, work / 'iter_2.pth', tmp_path / 'test')
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
