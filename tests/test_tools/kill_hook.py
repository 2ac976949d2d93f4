"""Test helper imported through custom_imports: the training process kills itself with
SIGKILL (no clean-up of any kind runs), as set by the environment variable KILL_AT:

* ``iter:N``: at the start of iteration N (1-based), before its batch is trained;
* ``save:N``: inside the save of the checkpoint of iteration N, after half of its bytes
  went to the disk;
* ``term:N``: sends itself SIGTERM (what SLURM sends before preempting) at the start of
  iteration N; the process is not killed by it when PreemptionHook is in place.

Without KILL_AT the hook does nothing."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

import mmtransnext.checkpoint.atomic_write as atomic


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module(force=True)
class KillHook(Hook):

    def __init__(self):
        what, _, step = os.environ.get('KILL_AT', '').partition(':')
        self.what, self.step = what, int(step or 0)

    def before_run(self, runner):
        if self.what != 'save':
            return
        write_all = atomic._write_all

        def write_half_then_die(fd, data):
            if runner.iter + 1 == self.step and len(data) > 4096:  # the checkpoint
                write_all(fd, data[:len(data) // 2])
                os.fsync(fd)
                _die()
            write_all(fd, data)

        atomic._write_all = write_half_then_die

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.what == 'iter' and runner.iter + 1 == self.step:
            _die()
        if self.what == 'term' and runner.iter + 1 == self.step:
            os.kill(os.getpid(), signal.SIGTERM)
