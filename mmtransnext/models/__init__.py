from .backbones import ARCH_ZOO, TransNeXt
from .classifiers import TransNeXtClassifier

__all__ = ['TransNeXt', 'TransNeXtClassifier', 'ARCH_ZOO']
