"""Every registration of mmtransnext, in one place; run when ``mmtransnext`` is imported.

Everything goes into mmengine's root registries. The registries of mmdet, mmseg and
mmpretrain are their children and look a name up in their parents, so one registration
serves ``dict(type='TransNeXt')`` (and ``'mmdet.TransNeXt'`` etc.) in all three, with
or without those packages installed, and needs none of them imported. The authors' names
``transnext_micro|tiny|small|base`` build TransNeXt from their keywords
(mmtransnext/models/backbones/authors_compat.py).
It also installs the safe checkpoint reader (mmtransnext/utils/safe_load.py) as
mmengine's loader of local checkpoint files.
The one exception needs mmdet: ``InstanceSegTTAModel`` (mmtransnext/engine/det_tta.py)
registers itself when tools/test.py --aug-test imports it for a detector with masks.
mmengine's config loader learns the ``mmtransnext::`` prefix (``_base_ =
'mmtransnext::upernet/upernet_transnext_tiny.py'``, read from the configs the package ships
in ``.mim/configs``), wherever mmtransnext is imported before the config is parsed.
timm, where installed, gets the ``transnext_*`` models (mmtransnext/models/classifiers/
timm_transnext.py); the backbone itself does not import timm.
"""
import importlib.util

from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS


def register_all_modules():
    from mmtransnext.engine import (BF16OptimWrapper, ProgressBarHook,
                                    TransNeXtOptimWrapperConstructor)
    from mmtransnext.engine.safe_training import register_safe_training
    from mmtransnext.engine.strict_load import StrictLoadHook
    from mmtransnext.models import TransNeXt
    from mmtransnext.models.backbones.authors_compat import AUTHORS_TYPES
    from mmtransnext.utils.safe_load import enable_safe_load
    MODELS.register_module(name='TransNeXt', module=TransNeXt, force=True)
    for name, build in AUTHORS_TYPES.items():  # the authors' type='transnext_tiny' etc.
        MODELS.register_module(name=name, module=build, force=True)
    OPTIM_WRAPPER_CONSTRUCTORS.register_module(
        name='TransNeXtOptimWrapperConstructor', module=TransNeXtOptimWrapperConstructor,
        force=True)
    OPTIM_WRAPPERS.register_module(name='BF16OptimWrapper', module=BF16OptimWrapper, force=True)
    HOOKS.register_module(name='ProgressBarHook', module=ProgressBarHook, force=True)
    HOOKS.register_module(name='StrictLoadHook', module=StrictLoadHook, force=True)
    register_safe_training()
    enable_safe_load()
    MODULE2PACKAGE.setdefault('mmtransnext', 'mmtransnext')
    if importlib.util.find_spec('timm') is not None:
        # its @register_model functions add transnext_* to timm's registry on import
        import mmtransnext.models.classifiers.timm_transnext  # noqa: F401
