"""Every registration of mmtransnext, in one place.

Everything goes into mmengine's root registries. The registries of mmdet, mmseg and
mmpretrain are their children and look a name up in their parents, so one registration
serves ``dict(type='TransNeXt')`` (and ``'mmdet.TransNeXt'`` etc.) in all three, with
or without those packages installed, and needs none of them imported.

* :func:`register_all_modules` runs when ``mmtransnext`` is imported: the backbone (also
  under the authors' names ``transnext_micro|tiny|small|base``,
  mmtransnext/models/backbones/authors_compat.py), the optimizer constructor and wrapper,
  the hooks, the runner with a run folder of its own, the atomic file backend; the safe
  checkpoint reader (mmtransnext/checkpoint/safe_load.py) as mmengine's loader of local
  files; the ``mmtransnext::`` config prefix (``_base_ =
  'mmtransnext::upernet/upernet_transnext_tiny.py'``, read from the configs the package
  ships in ``.mim/configs``); and, where timm is installed, timm's ``transnext_*`` models
  (mmtransnext/models/classifiers/timm_transnext.py; the backbone itself does not import
  timm).
* :func:`register_task_modules` adds what the tools need once they know the config's task
  (mmtransnext/cli/task.py): the checked loading transforms (mmcv's, and mmseg's label
  loading) and the test-time augmentation models that subclass mmdet's or mmseg's.
* :func:`register_runner_with_unique_run_dir` registers a config's own runner type with a
  run folder of its own (mmtransnext/cli/safe_training.py).
"""
import importlib.util

from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import (HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, RUNNERS,
                               TRANSFORMS)


def _register(registry, *classes) -> None:
    for cls in classes:
        registry.register_module(name=cls.__name__, module=cls, force=True)


def register_all_modules() -> None:
    from mmengine.fileio import register_backend

    from mmtransnext.checkpoint.atomic_write import AtomicLocalBackend
    from mmtransnext.checkpoint.checkpoint_hook import ATOMIC_BACKEND, SafeCheckpointHook
    from mmtransnext.checkpoint.rng_state_hook import RNGStateHook
    from mmtransnext.checkpoint.safe_load import enable_safe_load
    from mmtransnext.checkpoint.strict_load_hook import StrictLoadHook
    from mmtransnext.engine import (BF16OptimWrapper, NonFiniteGuardHook, PreemptionHook,
                                    ProgressBarHook, TransNeXtOptimWrapperConstructor,
                                    UniqueRunDirRunner)
    from mmtransnext.models import TransNeXt
    from mmtransnext.models.backbones.authors_compat import AUTHORS_TYPES
    _register(MODELS, TransNeXt)
    for name, build in AUTHORS_TYPES.items():  # the authors' type='transnext_tiny' etc.
        MODELS.register_module(name=name, module=build, force=True)
    _register(OPTIM_WRAPPER_CONSTRUCTORS, TransNeXtOptimWrapperConstructor)
    _register(OPTIM_WRAPPERS, BF16OptimWrapper)
    _register(HOOKS, ProgressBarHook, StrictLoadHook, SafeCheckpointHook, RNGStateHook,
              NonFiniteGuardHook, PreemptionHook)
    _register(RUNNERS, UniqueRunDirRunner)
    register_backend(ATOMIC_BACKEND['backend'], AtomicLocalBackend, force=True)
    enable_safe_load()
    MODULE2PACKAGE.setdefault('mmtransnext', 'mmtransnext')
    if importlib.util.find_spec('timm') is not None:
        # its @register_model functions add transnext_* to timm's registry on import
        import mmtransnext.models.classifiers.timm_transnext  # noqa: F401


def register_task_modules(task: str) -> None:
    """Every task: CheckedLoadImageFromFile; 'det': InstanceSegTTAModel (needs mmdet);
    'seg': RunningSumSegTTAModel and CheckedLoadSegAnnotations (need mmseg)."""
    from mmtransnext.datasets.checked_loading import CheckedLoadImageFromFile
    _register(TRANSFORMS, CheckedLoadImageFromFile)
    if task == 'det':
        from mmtransnext.models.test_time_augs.det_tta import InstanceSegTTAModel
        _register(MODELS, InstanceSegTTAModel)
    elif task == 'seg':
        from mmtransnext.datasets.seg_label_checks import CheckedLoadSegAnnotations
        from mmtransnext.models.test_time_augs.seg_tta import RunningSumSegTTAModel
        _register(MODELS, RunningSumSegTTAModel)
        _register(TRANSFORMS, CheckedLoadSegAnnotations)


def register_runner_with_unique_run_dir(base: type) -> str:
    """Register ``base`` (a Runner class) with a run folder of its own
    (mmtransnext/engine/unique_run_dir.py); returns the registered name."""
    from mmtransnext.engine.unique_run_dir import with_unique_run_dir
    runner = with_unique_run_dir(base)
    _register(RUNNERS, runner)
    return runner.__name__
