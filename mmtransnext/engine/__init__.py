"""Training-side helpers: the optimizer-wrapper constructor that TransNeXt configs use,
bf16 autocast on any device, the progress-bar hook.

``mmtransnext.engine.det_tta`` (instance-segmentation test-time augmentation) needs mmdet
and is imported on demand by tools/test.py, not here.
"""
from .bf16_optim_wrapper import BF16OptimWrapper
from .optim_constructor import TransNeXtOptimWrapperConstructor
from .progress_bar_hook import ProgressBarHook

__all__ = ['BF16OptimWrapper', 'TransNeXtOptimWrapperConstructor', 'ProgressBarHook']
