"""What tools/train.py and tools/test.py switch on so that no run loses work or data:
atomic checkpoints and a movable ``last_checkpoint`` (SafeCheckpointHook), exact resume
(RNGStateHook), a safe choice of the checkpoint to resume from (resume.py) and a run
folder of its own per run (run_dir.py)."""
from mmengine.fileio import register_backend
from mmengine.registry import HOOKS, RUNNERS

from .atomic_checkpoint import AtomicLocalBackend
from .checkpoint_hook import ATOMIC_BACKEND, SafeCheckpointHook
from .resume import resolve_resume
from .rng_state import RNGStateHook
from .run_dir import UniqueRunDirRunner, use_unique_run_dir

_PLAIN_CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')


def register_safe_training() -> None:
    HOOKS.register_module(name='SafeCheckpointHook', module=SafeCheckpointHook, force=True)
    HOOKS.register_module(name='RNGStateHook', module=RNGStateHook, force=True)
    RUNNERS.register_module(name='UniqueRunDirRunner', module=UniqueRunDirRunner, force=True)
    register_backend(ATOMIC_BACKEND['backend'], AtomicLocalBackend, force=True)


def setup_safe_training(cfg) -> None:
    """tools/train.py: after the config is complete (``--resume`` applied)."""
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') in _PLAIN_CHECKPOINT_HOOKS:
        checkpoint['type'] = 'SafeCheckpointHook'
    custom = list(cfg.get('custom_hooks') or [])
    if not any(hook.get('type') == 'RNGStateHook' for hook in custom):
        custom.append(dict(type='RNGStateHook'))
    cfg.custom_hooks = custom
    use_unique_run_dir(cfg)
    resolve_resume(cfg)


def setup_safe_testing(cfg) -> None:
    """tools/test.py: a run folder of its own."""
    use_unique_run_dir(cfg)
