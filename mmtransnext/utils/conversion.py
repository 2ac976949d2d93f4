"""Key mapping between the authors' checkpoints and mm model layouts."""
from typing import Dict

import torch

from .checkpoint import unwrap_state_dict

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


def infer_arch(state_dict) -> str:
    """Name of the TransNeXt variant whose backbone keys/shapes ``state_dict`` holds
    (official layout, no prefix)."""
    from mmtransnext.models.backbones.arch_settings import ARCH_ZOO
    dims, depths, sr_ratios = [], [], []
    for i in range(1, 5):
        proj = state_dict.get(f'patch_embed{i}.proj.weight')
        if proj is None:
            break
        dims.append(proj.shape[0])
        blocks = {int(k.split('.')[1]) for k in state_dict if k.startswith(f'block{i}.')}
        depths.append(max(blocks) + 1 if blocks else 0)
        pooled = f'block{i}.0.attn.sr.weight' in state_dict
        sr_ratios.append(pooled)
    for name, arch in ARCH_ZOO.items():
        if (arch['embed_dims'] == dims and arch['depths'] == depths
                and [s > 1 for s in arch['sr_ratios']] == sr_ratios):
            return name
    raise ValueError(f'no TransNeXt arch has embed_dims {dims}, depths {depths} and pooled '
                     f'attention in stages {sr_ratios}; known: {sorted(ARCH_ZOO)}')
