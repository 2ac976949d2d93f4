"""Training-side helpers: the optimizer-wrapper constructor that TransNeXt configs use.

``mmtransnext.engine.det_tta`` (instance-segmentation test-time augmentation) needs mmdet
and is imported on demand by tools/test.py, not here.
"""
from .optim_constructor import TransNeXtOptimWrapperConstructor
from .progress_bar_hook import ProgressBarHook

__all__ = ['TransNeXtOptimWrapperConstructor', 'ProgressBarHook']
