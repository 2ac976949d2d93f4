from .transnext_cls import TransNeXtClassifier

__all__ = ['TransNeXtClassifier']
