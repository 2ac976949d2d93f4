"""Every registration of mmtransnext, in one place; run when ``mmtransnext`` is imported.

TransNeXt goes into mmengine's root MODELS registry. The registries of mmdet, mmseg and
mmpretrain are its children and look a name up in their parents, so one registration
serves ``dict(type='TransNeXt')`` (and ``'mmdet.TransNeXt'`` etc.) in all three, with
or without those packages installed, and needs none of them imported.
"""
from mmengine.registry import MODELS

from mmtransnext.models import TransNeXt
import mmtransnext.engine  # noqa: F401,E402  registers TransNeXtOptimWrapperConstructor


def register_all_modules():
    from mmengine.registry import HOOKS
    from mmtransnext.engine import ProgressBarHook
    MODELS.register_module(name='TransNeXt', module=TransNeXt, force=True)
    HOOKS.register_module(name='ProgressBarHook', module=ProgressBarHook, force=True)
    from mmtransnext.models.classifiers.timm_models import register_timm_models
    register_timm_models()
