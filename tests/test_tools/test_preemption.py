"""Preemption loses nothing: SIGTERM / SIGUSR1 save the current iteration atomically, the
run exits with the requeue status that tools/slurm_train.sh requeues on, and resuming
continues bit-identically."""
import os
import signal
import stat

import pytest
import torch
from mmengine.hooks import Hook

from mmtransnext.engine.preemption_hook import REQUEUE_EXIT_CODE, Preempted, PreemptionHook
from mmtransnext.checkpoint.safe_load import torch_load_allowed
from test_checkpoint_safety import _same, _state
from test_mmengine_contract import plain_runner
from tools_testing import TOOLS, run, tool_env


class SignalAt(Hook):
    """Sends the process ``signum`` at the start of iteration ``step`` (1-based)."""

    def __init__(self, step, signum):
        self.step, self.signum = step, signum

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.fixture
def handlers():
    """The signal handlers of the test process are put back after the test."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def _runner(work, *hooks, **kw):
    from mmtransnext.checkpoint.rng_state_hook import RNGStateHook
    return plain_runner(work, custom_hooks=[RNGStateHook(), *hooks], **kw)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGUSR1])
def test_signal_saves_the_iteration_and_resume_is_exact(tmp_path, handlers, signum):
    _runner(tmp_path / 'straight').train()
    work = tmp_path / 'work'
    with pytest.raises(Preempted) as info:
        _runner(work, PreemptionHook(), SignalAt(3, signum)).train()
    assert info.value.code == REQUEUE_EXIT_CODE
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_2.pth', 'iter_3.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_3.pth')
    assert torch_load_allowed(work / 'iter_3.pth')['meta']['iter'] == 3
    _runner(work, resume=True).train()
    assert _same(_state(tmp_path / 'straight' / 'iter_4.pth'), _state(work / 'iter_4.pth'))


def test_signal_at_a_checkpoint_iteration_saves_once(tmp_path, handlers):
    work = tmp_path / 'work'
    with pytest.raises(Preempted):
        _runner(work, PreemptionHook(), SignalAt(2, signal.SIGTERM)).train()
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_2.pth']


def test_handlers_are_put_back_after_training(tmp_path, handlers):
    before = signal.getsignal(signal.SIGTERM)
    _runner(tmp_path, PreemptionHook(), max_iters=2).train()
    assert signal.getsignal(signal.SIGTERM) == before


def test_slurm_train_requeues_a_preempted_job(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, body in (('srun', f'echo "SRUN $*"; exit {REQUEUE_EXIT_CODE}'),
                       ('scontrol', 'echo "SCONTROL $*"')):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\n{body}\n')
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    env = tool_env(PATH=f'{bin_dir}:/usr/bin:/bin', SLURM_JOB_ID='123')
    cmd = ['bash', TOOLS / 'slurm_train.sh', 'part', 'job', 'cfg.py', 'wd']
    proc = run(cmd, env=env, expect_ok=False)
    assert proc.returncode == REQUEUE_EXIT_CODE
    assert 'SCONTROL requeue 123' in proc.stdout
    assert '--resume' not in next(l for l in proc.stdout.splitlines() if l.startswith('SRUN'))
    proc = run(cmd, env={**env, 'SLURM_RESTART_COUNT': '1'}, expect_ok=False)
    line = next(l for l in proc.stdout.splitlines() if l.startswith('SRUN'))
    assert line.endswith('--launcher=slurm --resume')
