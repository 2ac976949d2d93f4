from .arch_settings import ARCH_ZOO
from .transnext import TransNeXt

__all__ = ['TransNeXt', 'ARCH_ZOO']
