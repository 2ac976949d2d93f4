"""mmengine's CheckpointHook, made safe against crashes and full disks.

* every checkpoint (also ``best_*``) is written atomically (AtomicLocalBackend) on local
  paths: a kill or ENOSPC during the save leaves the previous files as they were;
* ``last_checkpoint`` is written atomically, and only after the checkpoint it names is
  complete; it holds the checkpoint's absolute path, as mmengine's own hook writes it, so
  plain mmengine (``resume=True``, mmdet's / mmseg's tools/train.py ``--resume``) finds it
  from any working directory (tools/train.py ``--resume`` also finds the checkpoints of a
  work dir that was moved since, see resume.py);
* each rank's RNG states go into the checkpoint (RNGStateHook restores them on resume);
* with ``max_keep_ckpts``, the oldest checkpoint is deleted after the new one is on the
  disk (mmengine deletes it first: a crash during the save then left no checkpoint);
* weights holding NaN or Inf are never written (``check_finite``): the save raises
  ``FloatingPointError`` naming the tensors, before the rotation deletes anything and
  before ``last_checkpoint`` changes, so a finite checkpoint is never replaced by them.

tools/train.py puts it in place of ``default_hooks.checkpoint`` (same arguments).
"""
import os.path as osp
from collections import deque

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper

from .atomic_write import atomic_write_bytes
from .rng_state_hook import RNG_INFO_KEY, training_rng_states
from .state_dict import nonfinite_tensors

ATOMIC_BACKEND = dict(backend='atomic_local')


def write_last_checkpoint(work_dir: str, checkpoint: str) -> None:
    """Point ``<work_dir>/last_checkpoint`` at ``checkpoint`` by its absolute path
    (mmengine's ``find_latest_checkpoint`` returns the text as it is, so a relative one
    would be read against the reader's working directory)."""
    atomic_write_bytes(osp.abspath(checkpoint).encode(),
                       osp.join(work_dir, 'last_checkpoint'))


class SafeCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook with the safeguards of the module docstring: atomic writes
    on local paths, ``last_checkpoint`` written last and absolute, the RNG states of every
    rank in each checkpoint, no checkpoint of non-finite weights. tools/train.py puts it in
    place of ``CheckpointHook``.

    Args:
        *args: Those of mmengine's ``CheckpointHook`` (``interval``, ``by_epoch``, ...).
        out_dir (str, optional): As mmengine's. A local folder (or None: the work dir) is
            written atomically; a remote one goes through its own backend unchanged.
        backend_args (dict, optional): As mmengine's; for local paths it selects the
            atomic backend.
        file_client_args (dict, optional): As mmengine's (deprecated there).
        check_finite (bool): Refuse to write weights that hold NaN or Inf (one pass over
            the weights per save). Defaults to True.
        **kwargs: The rest of mmengine's ``CheckpointHook`` arguments (``max_keep_ckpts``,
            ``save_best``, ...).
    """

    def __init__(self, *args, out_dir=None, backend_args=None, file_client_args=None,
                 check_finite=True, **kwargs):
        self.check_finite = check_finite
        local = out_dir is None or '://' not in str(out_dir)
        if backend_args is None and file_client_args is None and local:
            backend_args = dict(ATOMIC_BACKEND)
        super().__init__(*args, out_dir=out_dir, backend_args=backend_args,
                         file_client_args=file_client_args, **kwargs)

    def _refuse_nonfinite_weights(self, runner, step) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        bad = nonfinite_tensors(model)
        if bad:
            raise FloatingPointError(
                f'{self.filename_tmpl.format(step)} was not written: {len(bad)} weight '
                f'tensor(s) hold NaN or Inf ({", ".join(bad[:5])}'
                f'{", ..." if len(bad) > 5 else ""}); the existing checkpoints and '
                'last_checkpoint are unchanged. Resume from the last one with a lower lr or '
                'gradient clipping (default_hooks.checkpoint.check_finite=False saves them '
                'anyway).')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.max_keep_ckpts > 0 and not hasattr(self, 'keep_ckpt_ids'):  # mmengine < 0.8
            self.keep_ckpt_ids = deque(runner.message_hub.get_info('keep_ckpt_ids', []),
                                       self.max_keep_ckpts)

    def _save_checkpoint(self, runner) -> None:
        """Every interval save goes through :meth:`_save_checkpoint_with_step`, as mmengine
        >= 0.8 does (mmengine 0.7 saved inline, past the safeguards)."""
        if self.by_epoch:
            step = runner.epoch + 1
            meta = dict(epoch=step, iter=runner.iter)
        else:
            step = runner.iter + 1
            meta = dict(epoch=runner.epoch, iter=step)
        self._save_checkpoint_with_step(runner, step, meta)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if self.check_finite:
            self._refuse_nonfinite_weights(runner, step)
        dropped = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                dropped.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        runner.message_hub.update_info(RNG_INFO_KEY, training_rng_states(runner))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        if '://' not in str(self.last_ckpt):
            write_last_checkpoint(runner.work_dir, self.last_ckpt)
        else:
            with open(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
                f.write(self.last_ckpt)
        for old in dropped:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)

