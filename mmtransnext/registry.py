"""Every registration of mmtransnext, in one place; run when ``mmtransnext`` is imported.

Everything goes into mmengine's root registries. The registries of mmdet, mmseg and
mmpretrain are their children and look a name up in their parents, so one registration
serves ``dict(type='TransNeXt')`` (and ``'mmdet.TransNeXt'`` etc.) in all three, with
or without those packages installed, and needs none of them imported.
It also installs the safe checkpoint reader (mmtransnext/utils/safe_load.py) as
mmengine's loader of local checkpoint files.
The one exception needs mmdet: ``InstanceSegTTAModel`` (mmtransnext/engine/det_tta.py)
registers itself when tools/test.py --aug-test imports it for a detector with masks.
"""
from mmengine.registry import HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS


def register_all_modules():
    from mmtransnext.engine import (BF16OptimWrapper, ProgressBarHook,
                                    TransNeXtOptimWrapperConstructor)
    from mmtransnext.models import TransNeXt
    from mmtransnext.models.classifiers.timm_models import register_timm_models
    MODELS.register_module(name='TransNeXt', module=TransNeXt, force=True)
    OPTIM_WRAPPER_CONSTRUCTORS.register_module(
        name='TransNeXtOptimWrapperConstructor', module=TransNeXtOptimWrapperConstructor,
        force=True)
    OPTIM_WRAPPERS.register_module(name='BF16OptimWrapper', module=BF16OptimWrapper, force=True)
    HOOKS.register_module(name='ProgressBarHook', module=ProgressBarHook, force=True)
    from mmtransnext.engine.strict_load import StrictLoadHook
    HOOKS.register_module(name='StrictLoadHook', module=StrictLoadHook, force=True)
    register_timm_models()
    from mmtransnext.utils.safe_load import enable_safe_load
    enable_safe_load()
