"""A work dir belongs to one training run: a second run on it is refused before it writes
anything, a crashed run leaves no stuck lock, and a new run in a work dir holding another
run's checkpoints is refused unless --resume or --overwrite."""
import signal
import subprocess
import sys

import pytest
import torch

from mmtransnext.engine.work_dir_lock import (LOCK_NAME, WorkDirBusyError, WorkDirTakenError,
                                              check_work_dir_owner, lock_work_dir,
                                              release_work_dir)
from tools_testing import CONFIGS, ROOT, load_tool, tool_env

UPERNET = str(CONFIGS / 'upernet/upernet_transnext_tiny.py')
HOLD = '''
import sys, time
from mmtransnext.engine.work_dir_lock import lock_work_dir
lock_work_dir(sys.argv[1])
print('locked', flush=True)
time.sleep(600)
'''


def _holder(work):
    """A process holding the work dir's lock (it has taken it when this returns)."""
    proc = subprocess.Popen([sys.executable, '-c', HOLD, str(work)], cwd=ROOT, env=tool_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    assert line.strip() == 'locked', line + proc.stdout.read()
    return proc


@pytest.fixture(autouse=True)
def local_rank(monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_args sets it; keep the session clean
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        monkeypatch.delenv(name, raising=False)


def test_second_run_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    work = tmp_path / 'work'
    holder = _holder(work)
    try:
        with pytest.raises(WorkDirBusyError, match=rf'{work} is in use by another training '
                           rf'run \(host .*, pid {holder.pid}, started .*\).*another --work-dir'):
            lock_work_dir(str(work))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_work_dir(str(work))  # the kernel dropped the dead run's lock
    assert lock_work_dir(str(work))  # taken once per process
    release_work_dir(str(work))
    assert sorted(p.name for p in work.iterdir()) == [LOCK_NAME]


def test_train_py_refuses_a_busy_work_dir_before_writing(tmp_path):
    train_py = load_tool('train')
    work = tmp_path / 'work'
    holder = _holder(work)
    try:
        with pytest.raises(WorkDirBusyError, match='in use by another training run'):
            train_py.main([UPERNET, '--work-dir', str(work)])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert sorted(p.name for p in work.iterdir()) == [LOCK_NAME]


def _checkpoint(work, step):
    work.mkdir(parents=True, exist_ok=True)
    torch.save(dict(meta=dict(epoch=0, iter=step), state_dict={}), work / f'iter_{step}.pth')
    (work / 'last_checkpoint').write_text(str(work / f'iter_{step}.pth'))


def test_new_run_in_a_work_dir_with_checkpoints(tmp_path):
    work = tmp_path / 'work'
    _checkpoint(work, 2)
    _checkpoint(work, 4)
    with pytest.raises(WorkDirTakenError, match=r'holds checkpoints of an earlier run '
                       r'\(iter_2.pth, iter_4.pth, last_checkpoint\).*--resume.*--overwrite'):
        check_work_dir_owner(str(work), 'iter_{}.pth')
    assert sorted(p.name for p in work.iterdir()) == ['iter_2.pth', 'iter_4.pth',
                                                      'last_checkpoint']
    check_work_dir_owner(str(work), 'iter_{}.pth', overwrite=True)
    aside = [p for p in work.iterdir() if p.name.startswith('replaced_')]
    assert len(aside) == 1 and sorted(p.name for p in work.iterdir()) == [aside[0].name]
    assert sorted(p.name for p in aside[0].iterdir()) == ['iter_2.pth', 'iter_4.pth',
                                                          'last_checkpoint']
    check_work_dir_owner(str(work), 'iter_{}.pth')  # nothing left: a new run may start


def test_train_py_needs_resume_or_overwrite(tmp_path):
    train_py = load_tool('train')
    work = tmp_path / 'work'
    _checkpoint(work, 2)
    try:
        with pytest.raises(WorkDirTakenError, match='holds checkpoints of an earlier run'):
            train_py.main([UPERNET, '--work-dir', str(work), '--cfg-options',
                           'default_hooks.checkpoint.by_epoch=False'])
        args = train_py.parse_args([UPERNET, '--work-dir', str(work), '--resume'])
        train_py.claim_work_dir(train_py.build_cfg(args))  # resuming it: accepted
    finally:
        release_work_dir(str(work))
