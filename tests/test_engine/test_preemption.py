"""Preemption loses nothing: SIGTERM / SIGUSR1 save the current iteration atomically, the
run exits with the requeue status that tools/slurm_train.sh requeues on, and resuming
continues bit-identically. (tools/slurm_train.sh's requeue: tests/test_tools/test_dist.py.)"""
import os
import signal

import pytest
from mmengine.hooks import Hook

from mmtransnext.engine.preemption_hook import REQUEUE_EXIT_CODE, Preempted, PreemptionHook
from mmtransnext.checkpoint.safe_load import torch_load_allowed
from runner_testing import plain_runner, same_tensors, state_tensors


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
    assert same_tensors(state_tensors(tmp_path / 'straight' / 'iter_4.pth'), state_tensors(work / 'iter_4.pth'))


def test_signal_at_a_checkpoint_iteration_saves_once(tmp_path, handlers):
    work = tmp_path / 'work'
    with pytest.raises(Preempted):
        _runner(work, PreemptionHook(), SignalAt(2, signal.SIGTERM)).train()
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_2.pth']


def test_handlers_are_put_back_after_training(tmp_path, handlers):
    before = signal.getsignal(signal.SIGTERM)
    _runner(tmp_path, PreemptionHook(), max_iters=2).train()
    assert signal.getsignal(signal.SIGTERM) == before
