"""mmengine's CheckpointHook, made safe against crashes and full disks.

* every checkpoint (also ``best_*``) is written atomically (AtomicLocalBackend) on local
  paths: a kill or ENOSPC during the save leaves the previous files as they were;
* ``last_checkpoint`` is written atomically, relative to the work dir, and only after the
  checkpoint it names is complete, so the work dir can be moved;
* each rank's RNG states go into the checkpoint (RNGStateHook restores them on resume);
* with ``max_keep_ckpts``, the oldest checkpoint is deleted after the new one is on the
  disk (mmengine deletes it first: a crash during the save then left no checkpoint).

tools/train.py puts it in place of ``default_hooks.checkpoint`` (same arguments).
"""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from .atomic_checkpoint import atomic_write_bytes
from .rng_state import RNG_INFO_KEY, training_rng_states

ATOMIC_BACKEND = dict(backend='atomic_local')


def write_last_checkpoint(work_dir: str, checkpoint: str) -> None:
    """Point ``<work_dir>/last_checkpoint`` at ``checkpoint``: relative to the work dir
    when it lies inside it, else absolute."""
    work_dir, checkpoint = osp.abspath(work_dir), osp.abspath(checkpoint)
    inside = osp.commonpath([work_dir, checkpoint]) == work_dir
    text = osp.relpath(checkpoint, work_dir) if inside else checkpoint
    atomic_write_bytes(text.encode(), osp.join(work_dir, 'last_checkpoint'))


class SafeCheckpointHook(CheckpointHook):

    def __init__(self, *args, out_dir=None, backend_args=None, file_client_args=None,
                 **kwargs):
        local = out_dir is None or '://' not in str(out_dir)
        if backend_args is None and file_client_args is None and local:
            backend_args = dict(ATOMIC_BACKEND)
        super().__init__(*args, out_dir=out_dir, backend_args=backend_args,
                         file_client_args=file_client_args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta):
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

