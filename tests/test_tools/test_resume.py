"""Resuming: N iterations, stop, resume to 2N gives the weights of an uninterrupted 2N run
(fixed seed, no dropout / drop path, deterministic pipeline, same data order). Resuming
loads mmengine's checkpoint with torch.load(weights_only=True) through the allow-list."""
import torch

from tools_testing import cls_config, train
from tools_testing import imagenet64, toy_root  # noqa: F401 (fixtures)
from mmtransnext.utils.safe_load import enable_safe_load


def _weights(path):
    enable_safe_load()
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def test_resume_matches_uninterrupted(tmp_path, imagenet64):
    cfg = cls_config(tmp_path, imagenet64, deterministic=True, name='cls_resume.py')
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    train(cfg, straight)  # 4 iterations
    train(cfg, resumed, '--cfg-options', 'train_cfg.max_iters=2')
    assert (resumed / 'iter_2.pth').is_file() and not (resumed / 'iter_4.pth').exists()
    proc = train(cfg, resumed, '--resume')
    assert 'resumed epoch: 0, iter: 2' in proc.stdout
    a, b = _weights(straight / 'iter_4.pth'), _weights(resumed / 'iter_4.pth')
    assert a.keys() == b.keys()
    changed = False
    start = _weights(resumed / 'iter_2.pth')
    for key in a:
        assert torch.equal(a[key], b[key]), f'{key} differs after resuming'
        changed |= not torch.equal(a[key], start[key])
    assert changed  # iterations 3-4 did train
