"""mmtransnext: the TransNeXt backbone for mmdetection, mmsegmentation and mmpretrain.

``custom_imports=dict(imports=['mmtransnext'])`` registers ``TransNeXt`` for all of them.
"""
from .models import TransNeXt, TransNeXtClassifier
from .registry import register_all_modules
from .version import __version__

register_all_modules()

__all__ = ['TransNeXt', 'TransNeXtClassifier', '__version__']
