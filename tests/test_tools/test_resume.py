"""Resuming never loses work and is exact: a classifier with random augmentation
(RandomResizedCrop, flip, Mixup/CutMix, drop path), validation during training, killed
with SIGKILL inside a checkpoint save and during an iteration, resumed, ends with every
tensor of the model and the optimizer equal (torch.equal) to an uninterrupted run. A
moved work dir whose newest checkpoint is damaged resumes from the previous one.
Two tools/test.py runs started together on one work dir keep a run folder and a metrics
file each. Resuming loads mmengine's checkpoint with torch.load(weights_only=True) through the
allow-list."""
import json
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from tools_testing import CLS_DATA, COMMON, CONFIGS, ROOT, TOOLS, tool_env, train, write_config
from mmtransnext.checkpoint.safe_load import enable_safe_load, torch_load_allowed

RANDOM_AUG = '''
custom_imports = dict(imports=['mmtransnext', 'kill_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='KillHook')]
model = dict(backbone=dict(arch='micro', img_size=64, drop_path_rate=0.1),
             head=dict(in_channels=384))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=64, edge='short'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=2, end=4, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2))
log_processor = dict(by_epoch=False)
'''


def _load(path):
    enable_safe_load()
    return torch_load_allowed(path)


def _tensors(obj, prefix=''):
    """{path: tensor} of every tensor nested in ``obj`` (dicts, lists, tuples)."""
    if torch.is_tensor(obj):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else \
        enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    out = {}
    for key, value in items:
        out.update(_tensors(value, f'{prefix}/{key}'))
    return out


def _model_and_optimizer(checkpoint):
    return _tensors(dict(state_dict=checkpoint['state_dict'],
                         optimizer=checkpoint['optimizer']))


def assert_same_training_state(expected, actual):
    a, b = _model_and_optimizer(expected), _model_and_optimizer(actual)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f'{len(different)} of {len(a)} tensors differ: {different[:5]}'
    assert len([k for k in a if k.startswith('/optimizer')]) > 100  # Adam's moments


@pytest.fixture(scope='module')
def config(tmp_path_factory, imagenet64):
    tmp = tmp_path_factory.mktemp('resume')
    return write_config(tmp / 'cls_resume.py', "_base_ = '{base}'", RANDOM_AUG, CLS_DATA,
                        COMMON, base=CONFIGS / 'transnext/transnext_tiny.py',
                        root=imagenet64)


@pytest.fixture(scope='module')
def straight(config, tmp_path_factory):
    """The uninterrupted 4 iterations (checkpoints at 2 and 4)."""
    work = tmp_path_factory.mktemp('straight')
    train(config, work)
    return work


def _killed(config, work, kill_at, *extra):
    proc = train(config, work, *extra, env=tool_env(KILL_AT=kill_at), expect_ok=False)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:]
    return proc


def test_kill_in_save_and_in_training_then_exact_resume(config, straight, tmp_path):
    work = tmp_path / 'work'
    _killed(config, work, 'save:4')
    # the save of iteration 4 left only its temporary, half written; iteration 2 intact
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_2.pth']
    assert [p.name for p in work.glob('.iter_4.pth.*.tmp')]
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')

    proc = _killed(config, work, 'iter:4', '--resume')  # trains iteration 3, dies in 4
    assert 'resumed epoch: 0, iter: 2' in proc.stdout
    assert not list(work.glob('.iter_4.pth.*.tmp'))  # the dead process's temporary
    proc = train(config, work, '--resume')
    assert 'resumed epoch: 0, iter: 2' in proc.stdout
    assert_same_training_state(_load(straight / 'iter_4.pth'), _load(work / 'iter_4.pth'))
    # resumed from iteration 2: the run did train (the state is not iteration 2's)
    assert not torch.equal(*[_load(p)['state_dict']['head.fc.weight']
                             for p in (work / 'iter_2.pth', work / 'iter_4.pth')])


def test_sigterm_saves_the_iteration_then_exact_resume(config, straight, tmp_path):
    """SLURM's SIGTERM before preemption: iteration 3 is finished and saved, the exit
    status asks for a requeue, and --resume continues bit-identically."""
    work = tmp_path / 'work'
    proc = train(config, work, env=tool_env(KILL_AT='term:3'), expect_ok=False)
    assert proc.returncode == 75, proc.stdout[-3000:]
    assert 'SIGTERM received: saved iteration 3' in proc.stdout
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_2.pth', 'iter_3.pth']
    proc = train(config, work, '--resume')
    assert 'resumed epoch: 0, iter: 3' in proc.stdout
    assert_same_training_state(_load(straight / 'iter_4.pth'), _load(work / 'iter_4.pth'))


def test_moved_work_dir_with_damaged_newest_checkpoint(config, straight, tmp_path):
    expected = _load(straight / 'iter_4.pth')
    moved = tmp_path / 'moved'
    shutil.copytree(straight, moved)
    # mmengine's own hook wrote an absolute path, into the folder's old place
    (moved / 'last_checkpoint').write_text(str(tmp_path / 'old_place' / 'iter_4.pth'))
    newest = moved / 'iter_4.pth'
    newest.write_bytes(newest.read_bytes()[:newest.stat().st_size // 2])

    proc = train(config, moved, '--resume')
    out = proc.stdout
    assert 'the work dir was moved?' in out and 'skipped the newer checkpoint' in out
    assert 'resumed epoch: 0, iter: 2' in out
    assert (moved / 'iter_4.pth.corrupt').is_file()  # kept, not overwritten
    assert_same_training_state(expected, _load(moved / 'iter_4.pth'))


def test_parallel_test_runs_keep_both_metrics(config, straight, tmp_path):
    work = tmp_path / 'tests'
    cmd = [sys.executable, str(TOOLS / 'test.py'), str(config), str(straight / 'iter_4.pth'),
           '--work-dir', str(work)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=tool_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    runs = sorted(p for p in work.iterdir() if p.is_dir())
    assert len(runs) == 2, runs
    for run in runs:
        metrics = json.loads((run / f'{run.name}.json').read_text().splitlines()[-1])
        assert 'accuracy/top1' in metrics
