"""No lost work, in-process and small: atomic checkpoint writes under a full disk, the
choice of the checkpoint ``--resume`` continues from (no / empty / stale
``last_checkpoint``, damaged newest checkpoints, a later checkpoint that would be
overwritten), exact resume of the RNG streams, and one run folder per run."""
import errno
import os
import random
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import save_checkpoint

import mmtransnext  # noqa: F401 (registers the hooks, the runner and the file backend)
import mmtransnext.checkpoint.atomic_write as atomic
import mmtransnext.checkpoint.resume as resume
from mmtransnext.checkpoint.resume import find_resume_checkpoint, resolve_resume
from mmtransnext.checkpoint.rng_state_hook import capture_rng_state, restore_rng_state
from mmtransnext.engine.unique_run_dir import UniqueRunDirRunner, reserve_run_dir
from runner_testing import DropModel, Mean, RandomData, same_tensors, state_tensors


# ---------------------------------------------------------------- a toy training
def toy_runner(work_dir, max_iters=4, resume_from=None, rng_hook=True, max_keep_ckpts=-1,
               by_epoch=False, save_best=None, num_workers=0):
    """4 iterations (checkpoints at 2 and 4), or ``by_epoch``: 2 epochs of 3 iterations
    (checkpoints after each); validation after each checkpoint."""
    torch.manual_seed(0)  # the model is built here, before the runner seeds
    loader = dict(dataset=RandomData(), sampler=dict(type='DefaultSampler', shuffle=True),
                  batch_size=2, num_workers=num_workers)
    return UniqueRunDirRunner(
        model=DropModel(), work_dir=str(work_dir), train_dataloader=loader,
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=[Mean()], val_cfg=dict(),
        train_cfg=dict(by_epoch=True, max_epochs=max_iters // 2, val_interval=1) if by_epoch
        else dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', by_epoch=by_epoch,
                                           interval=1 if by_epoch else 2,
                                           max_keep_ckpts=max_keep_ckpts,
                                           save_best=save_best, rule='greater'),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[dict(type='RNGStateHook')] if rng_hook else [],
        randomness=dict(seed=0), resume=resume_from is not None, load_from=resume_from)


@pytest.fixture(autouse=True)
def _safe_load():
    from mmtransnext.checkpoint.safe_load import enable_safe_load
    enable_safe_load()


@pytest.mark.parametrize('by_epoch,num_workers', [(False, 0), (True, 0), (False, 2)])
def test_exact_resume_restores_every_rng_stream(tmp_path, by_epoch, num_workers):
    """Augmentation in the main process or in 2 dataloader workers. save_best: mmengine
    saves the checkpoint again inside the validation."""
    first, last = ('epoch_1.pth', 'epoch_2.pth') if by_epoch else ('iter_2.pth', 'iter_4.pth')
    kw = dict(by_epoch=by_epoch, save_best='mean', num_workers=num_workers)
    toy_runner(tmp_path / 'straight', **kw).train()
    expected = state_tensors(tmp_path / 'straight' / last)
    for rng_hook in (True, False):
        work = tmp_path / f'resumed_{rng_hook}'
        toy_runner(work, max_iters=2, rng_hook=rng_hook, **kw).train()
        toy_runner(work, resume_from=str(work / first), rng_hook=rng_hook, **kw).train()
        # without the restored streams, dropout and augmentation differ (the test can fail)
        assert same_tensors(expected, state_tensors(work / last)) is rng_hook


def test_rng_state_round_trip():
    state = capture_rng_state()
    drawn = (random.random(), np.random.rand(), torch.rand(1))
    restore_rng_state(state)
    assert (random.random(), np.random.rand()) == drawn[:2] and torch.equal(torch.rand(1),
                                                                            drawn[2])


# ---------------------------------------------------------------- full disk
def _fail_second_checkpoint(monkeypatch):
    write_all, calls = atomic._write_all, []

    def write(fd, data):
        if len(data) > 256:  # a checkpoint, not last_checkpoint
            calls.append(1)
            if len(calls) == 2:
                write_all(fd, data[:len(data) // 2])
                raise OSError(errno.ENOSPC, 'No space left on device')
        write_all(fd, data)

    monkeypatch.setattr(atomic, '_write_all', write)


def test_full_disk_keeps_the_older_checkpoint(tmp_path, monkeypatch):
    """max_keep_ckpts=1: mmengine deletes iter_2 before saving iter_4; a failed save of
    iter_4 must leave iter_2 whole and no partial iter_4.pth."""
    _fail_second_checkpoint(monkeypatch)
    with pytest.raises(OSError, match='no space left on the device while writing .*'
                       'iter_4.pth.*existing checkpoints are intact'):
        toy_runner(tmp_path, max_keep_ckpts=1).train()
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file() and p.suffix != '.py')
    assert files == ['iter_2.pth', 'last_checkpoint'], files  # no temporary either
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')


def test_full_disk_keeps_an_existing_file(tmp_path, monkeypatch):
    path = tmp_path / 'iter_4.pth'
    save_checkpoint(dict(meta=dict(epoch=0, iter=4), state_dict={}), str(path))
    before = path.read_bytes()
    _fail_second_checkpoint(monkeypatch)
    save_checkpoint(dict(w=torch.zeros(1000)), str(tmp_path / 'other.pth'),
                    backend_args=dict(backend='atomic_local'))
    with pytest.raises(OSError, match='no space left'):
        save_checkpoint(dict(w=torch.ones(1000)), str(path),
                        backend_args=dict(backend='atomic_local'))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_4.pth', 'other.pth']


# ---------------------------------------------------------------- which checkpoint
def _ckpt(folder, step, seed=7, fill=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'iter_{step}.pth'
    torch.save(dict(meta=dict(epoch=0, iter=step, seed=seed),
                    state_dict=dict(w=torch.full((1000,), fill))), path)
    return path


def test_resume_without_last_checkpoint_takes_the_newest(tmp_path):
    for step in (2, 10, 4):
        _ckpt(tmp_path, step)
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_10.pth')


@pytest.mark.parametrize('record', ['', '\n', 'iter_2.pth', '/gone/old/work/iter_4.pth'])
def test_last_checkpoint_empty_relative_or_stale(tmp_path, record):
    """An empty record, a relative one naming an older checkpoint, an absolute one from
    before the work dir moved: the newest complete checkpoint wins."""
    _ckpt(tmp_path, 2)
    _ckpt(tmp_path, 4)
    (tmp_path / 'last_checkpoint').write_text(record)
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')


def test_moved_work_dir_resolves_last_checkpoint(tmp_path):
    path = _ckpt(tmp_path, 3)
    path.rename(tmp_path / 'latest.pth')  # a name outside the template
    (tmp_path / 'last_checkpoint').write_text('/old/place/latest.pth')
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'latest.pth')


def _damage(path, how):
    data = bytearray(path.read_bytes())
    if how == 'cut':
        data = data[:len(data) // 2]
    elif how == 'flip':  # one byte of the tensor data: only the CRC can tell
        at = data.find(np.full(4, 1.0, np.float32).tobytes())
        data[at] ^= 0xFF
    else:
        data = bytearray()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize('how', ['cut', 'flip', 'empty'])
def test_damaged_newest_checkpoint_falls_back(tmp_path, how, monkeypatch):
    warnings = []
    monkeypatch.setattr(resume, '_warn', warnings.append)
    _ckpt(tmp_path, 2)
    _damage(_ckpt(tmp_path, 4), how)
    (tmp_path / 'last_checkpoint').write_text('iter_4.pth')
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    assert len(warnings) == 1 and 'skipped the newer checkpoint' in warnings[0]
    assert (tmp_path / 'iter_4.pth.corrupt').is_file() and not (tmp_path / 'iter_4.pth').exists()


def test_only_damaged_checkpoints_is_an_error_that_changes_nothing(tmp_path):
    _damage(_ckpt(tmp_path, 2), 'cut')
    torch.save(dict(w=torch.zeros(3)), tmp_path / 'iter_4.pth')  # weights only
    with pytest.raises(RuntimeError, match=r'no complete checkpoint.*iter_4.pth: it holds '
                       r'no training state.*iter_2.pth: it is not a complete checkpoint'):
        find_resume_checkpoint(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_2.pth', 'iter_4.pth']


def test_stale_temporaries_are_removed(tmp_path):
    _ckpt(tmp_path, 2)
    dead = tmp_path / f'.iter_4.pth.{atomic._host()}.999999999.tmp'
    alive = tmp_path / f'.iter_6.pth.{atomic._host()}.{os.getpid()}.tmp'
    dead.write_bytes(b'half')
    alive.write_bytes(b'half')
    find_resume_checkpoint(str(tmp_path))
    assert not dead.exists() and alive.exists()


def _cfg(work_dir, load_from=None, seed=None):
    return Config(dict(work_dir=str(work_dir), resume=True, load_from=load_from,
                       randomness=dict(seed=seed),
                       default_hooks=dict(checkpoint=dict(by_epoch=False))))


def test_resume_settings(tmp_path):
    cfg = _cfg(tmp_path / 'empty')  # nothing to resume: from the beginning
    resolve_resume(cfg)
    assert cfg.resume is False and cfg.load_from is None
    older, newer = _ckpt(tmp_path, 2, seed=123), _ckpt(tmp_path, 4, seed=123)
    cfg = _cfg(tmp_path)
    resolve_resume(cfg)  # the newest, and its seed before the sampler is built
    assert cfg.load_from == str(newer) and cfg.randomness.seed == 123
    with pytest.raises(RuntimeError, match=r'continues from iteration 2, but the work dir '
                       r'already holds iter_4.pth .*would overwrite'):
        resolve_resume(_cfg(tmp_path, load_from=str(older), seed=0))


# ---------------------------------------------------------------- run folders
def test_run_folders_are_unique(tmp_path, monkeypatch):
    names = [reserve_run_dir(str(tmp_path), '20260101_000000') for _ in range(3)]
    assert names == ['20260101_000000', '20260101_000000_1', '20260101_000000_2']
    monkeypatch.setattr(time, 'time', lambda: 1.7e9)  # two runners in the same second
    dirs = {toy_runner(tmp_path / 'w').log_dir for _ in range(2)}
    assert len(dirs) == 2 and all(os.path.isdir(d) for d in dirs)
