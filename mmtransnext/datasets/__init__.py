"""Toy datasets in the real COCO / ADE20K / ImageNet formats (demo and tests)."""
from .toy import CLASSES, make_ade20k, make_all, make_coco, make_imagenet

__all__ = ['CLASSES', 'make_ade20k', 'make_all', 'make_coco', 'make_imagenet']
