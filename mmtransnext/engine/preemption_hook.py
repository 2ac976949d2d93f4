"""Preemption without lost work: SIGTERM (what SLURM sends before it preempts or cancels a
job) and SIGUSR1 (what ``sbatch --signal=USR1@<seconds>`` sends ahead of the end) make
the run finish its current iteration, save a checkpoint of it through the checkpoint hook
(atomic, with the RNG states, so ``--resume`` continues bit-identically) and exit with
:data:`REQUEUE_EXIT_CODE`, on which tools/slurm_train.sh requeues the job (the requeued
run resumes by itself). The time from the signal to the exit is one iteration and one
checkpoint save.

The handlers are installed when the hook is built, before the dataloader workers start:
the workers inherit them, so the signal does not kill them under the main process. In a
distributed run the ranks agree on the iteration to stop at (one all-reduce of a flag per
iteration). Iteration-based loops save ``iter_<n>.pth`` (the checkpoint hook's name, in
its rotation); epoch-based loops stop at the end of the iteration without a checkpoint
(mmengine cannot resume inside an epoch) and resume from the last epoch checkpoint.
tools/train.py adds the hook (``--no-preemption-save`` leaves it out; then a signal ends
the run at once, as before).
"""
import logging
import os.path as osp
import signal
import threading

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

REQUEUE_EXIT_CODE = 75  # EX_TEMPFAIL: "try again later"
SIGNALS = ('SIGTERM', 'SIGUSR1')


class Preempted(SystemExit):
    """The run saved its state after a preemption signal and exits to be requeued."""


def use_preemption_save(cfg) -> None:
    """Add :class:`PreemptionHook` to ``cfg.custom_hooks`` (tools/train.py)."""
    custom = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'PreemptionHook' for h in custom):
        custom.append(dict(type='PreemptionHook'))
    cfg.custom_hooks = custom


class PreemptionHook(Hook):
    """Save a checkpoint at the current iteration on SIGTERM / SIGUSR1 and exit with
    :data:`REQUEUE_EXIT_CODE` (see the module docstring).

    Args:
        signals (tuple[str]): the names of the signals that trigger it. Defaults to
            ``('SIGTERM', 'SIGUSR1')``.
        exit_code (int): the exit status after the save. Defaults to 75.
    """

    priority = 'LOWEST'  # after the checkpoint and scheduler hooks of the iteration

    def __init__(self, signals=SIGNALS, exit_code: int = REQUEUE_EXIT_CODE):
        self.exit_code = exit_code
        self.received = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for name in signals:
                number = getattr(signal, name)
                self.previous[number] = signal.signal(number, self._on_signal)

    def restore_signal_handlers(self) -> None:
        """Put back the handlers that were in place before this hook."""
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def after_train(self, runner) -> None:
        self.restore_signal_handlers()

    def _on_signal(self, signum, frame) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name

    def _stop_now(self) -> bool:
        if get_world_size() == 1:
            return self.received is not None
        from mmengine.dist import get_comm_device
        flag = torch.tensor([float(self.received is not None)], device=get_comm_device())
        all_reduce(flag)
        return bool(flag.item() > 0)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not self._stop_now():
            return
        step = runner.iter + 1
        hook = next((h for h in runner.hooks if hasattr(h, '_save_checkpoint_with_step')),
                    None)
        if hook is None:
            raise RuntimeError('a preemption signal arrived, but the run has no checkpoint '
                               'hook to save with; the run stops without saving')
        if hook.by_epoch:
            print_log(f'{self.received} received in an epoch-based run: it stops without a '
                      'checkpoint of the interrupted epoch (resume continues from the last '
                      'epoch checkpoint)', logger='current', level=logging.WARNING)
            raise Preempted(self.exit_code)
        last = getattr(hook, 'last_ckpt', None)  # mmengine 0.7 sets it at the first save
        if osp.basename(str(last)) != hook.filename_tmpl.format(step):
            hook._save_checkpoint_with_step(runner, step, dict(epoch=runner.epoch, iter=step))
        saved = hook.last_ckpt
        print_log(f'{self.received or "a preemption signal"} received: saved iteration '
                  f'{step} to {saved}; exiting with status {self.exit_code} to be requeued '
                  '(tools/train.py --resume continues from it)', logger='current',
                  level=logging.WARNING)
        raise Preempted(self.exit_code)
