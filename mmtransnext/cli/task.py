"""Which library a config belongs to: detection (mmdet), segmentation (mmseg) or
classification (mmpretrain), told by the config's ``default_scope`` or, without one, by
which package registers the model type; and that package made the default scope (its
registries then import their modules on demand), with mmtransnext's own classes for that
library registered.
"""
from mmengine.config import Config

from mmtransnext.registry import register_task_modules

TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}
SCOPES = {task: scope for scope, task in TASKS.items()}


def _own_registry(scope):
    module = __import__(f'{scope}.registry', fromlist=['MODELS'])
    return module.MODELS


def detect_task(cfg: Config) -> str:
    """'det', 'seg' or 'cls' for a config of mmdet, mmseg or mmpretrain."""
    scope = cfg.get('default_scope')
    if scope in TASKS:
        return TASKS[scope]
    model_type = cfg.get('model', {}).get('type')
    if isinstance(model_type, str):
        if '.' in model_type and model_type.split('.')[0] in TASKS:
            return TASKS[model_type.split('.')[0]]
        for package, task in (('mmseg', 'seg'), ('mmpretrain', 'cls'), ('mmdet', 'det')):
            try:
                registry = _own_registry(package)
            except ImportError:
                continue
            registry.import_from_location()
            if model_type in registry.module_dict:
                return task
    raise ValueError(
        f'cannot tell the task of this config (default_scope={scope!r}, model type='
        f'{model_type!r}); set default_scope to one of {sorted(TASKS)}')


def init_task_scope(cfg: Config) -> str:
    """Set the config's default scope (filled in from the task when missing) and make it
    the current one; register mmtransnext's classes for that library. Returns the task."""
    from mmengine.registry import init_default_scope
    task = detect_task(cfg)
    cfg.default_scope = cfg.get('default_scope') or SCOPES[task]
    init_default_scope(cfg.default_scope)
    register_task_modules(task)
    return task
