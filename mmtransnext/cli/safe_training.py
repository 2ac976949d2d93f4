"""What tools/train.py and tools/test.py switch on so that no run loses work or data:
atomic checkpoints that are never non-finite and a ``last_checkpoint`` that mmengine reads
from anywhere (SafeCheckpointHook), exact resume (RNGStateHook), a safe choice of the
checkpoint to resume from (checkpoint/resume.py), a run folder of its own per run
(engine/unique_run_dir.py), one training run per work dir (engine/work_dir_lock.py), the
non-finite loss guard (NonFiniteGuardHook) and a checkpoint on preemption signals
(PreemptionHook); tools/train.py adds the last two."""
from typing import Optional

from mmengine.registry import RUNNERS

from mmtransnext.checkpoint.resume import checkpoint_template, resolve_resume
from mmtransnext.engine.unique_run_dir import UniqueRunDirMixin
from mmtransnext.engine.work_dir_lock import check_work_dir_owner, lock_work_dir
from mmtransnext.registry import register_runner_with_unique_run_dir

_PLAIN_CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')


def setup_safe_training(cfg) -> Optional[dict]:
    """tools/train.py: after the config is complete (``--resume`` applied). Returns the
    meta of the checkpoint the run resumes from (None when it does not resume)."""
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') in _PLAIN_CHECKPOINT_HOOKS:
        checkpoint['type'] = 'SafeCheckpointHook'
    custom = list(cfg.get('custom_hooks') or [])
    if not any(hook.get('type') == 'RNGStateHook' for hook in custom):
        custom.append(dict(type='RNGStateHook'))
    cfg.custom_hooks = custom
    use_unique_run_dir(cfg)
    return resolve_resume(cfg)


def claim_work_dir(cfg, overwrite: bool = False) -> None:
    """tools/train.py, before the runner is built: this run's lock of the work dir, and
    a new run refused (or, with ``overwrite``, the earlier files moved aside) where the
    work dir holds another run's checkpoints (work_dir_lock.py)."""
    lock_work_dir(cfg.work_dir)
    if not cfg.get('resume'):
        check_work_dir_owner(cfg.work_dir, checkpoint_template(cfg)[0], overwrite)


def setup_safe_testing(cfg) -> None:
    """tools/test.py: a run folder of its own."""
    use_unique_run_dir(cfg)


def use_unique_run_dir(cfg) -> None:
    """Make the tools build a runner with a run folder of its own
    (mmtransnext/engine/unique_run_dir.py): the plain Runner becomes UniqueRunDirRunner,
    another registered runner type gets the mixin under the name ``UniqueRunDir<type>``."""
    runner_type = cfg.get('runner_type', 'Runner')
    if not isinstance(runner_type, str) or runner_type.startswith('UniqueRunDir'):
        return
    base = RUNNERS.get(runner_type)
    if base is None or issubclass(base, UniqueRunDirMixin):
        return  # unknown type: building the runner reports it
    cfg.runner_type = register_runner_with_unique_run_dir(base)
