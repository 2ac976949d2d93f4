"""Key mapping between the authors' checkpoints and mm model layouts."""
from typing import Dict

import torch

from .state_dict import unwrap_state_dict

HEAD_MAP = {'head.weight': 'head.fc.weight', 'head.bias': 'head.fc.bias'}


def imagenet_to_mmpretrain(checkpoint) -> Dict[str, torch.Tensor]:
    """Official ImageNet keys -> mmpretrain ImageClassifier keys
    (``backbone.*`` + LinearClsHead ``head.fc.*``)."""
    sd = unwrap_state_dict(checkpoint)
    return {HEAD_MAP.get(k, f'backbone.{k}'): v for k, v in sd.items()}


def mmpretrain_to_imagenet(state_dict) -> Dict[str, torch.Tensor]:
    """Inverse of :func:`imagenet_to_mmpretrain`."""
    inverse = {v: k for k, v in HEAD_MAP.items()}
    out = {}
    for k, v in unwrap_state_dict(state_dict).items():
        out[inverse.get(k, k[len('backbone.'):] if k.startswith('backbone.') else k)] = v
    return out


def is_imagenet_layout(state_dict) -> bool:
    """Official ImageNet layout: top-level ``patch_embed1`` keys, no ``backbone.`` prefix."""
    return any(k.startswith('patch_embed1.') for k in state_dict)
