"""Geometry of a k x k sliding window on an H x W map: offsets, padding mask, valid counts
(the Python side of csrc/common/window_geometry.h).

Offsets are o_j = (j // k - k // 2, j % k - k // 2), j = 0 .. k*k - 1 (row-major).
Results are cached per (H, W, k, device): they depend on nothing else.
"""
from functools import lru_cache
from typing import List, Tuple

import torch


def window_offsets(kernel_size: int) -> List[Tuple[int, int]]:
    r = kernel_size // 2
    return [(j // kernel_size - r, j % kernel_size - r) for j in range(kernel_size * kernel_size)]


@lru_cache(maxsize=128)
def outside_mask(height: int, width: int, kernel_size: int,
                 device: torch.device) -> torch.Tensor:
    """Bool [H*W, k*k]: True where token p + o_j lies outside the image."""
    ys = torch.arange(height, device=device).view(height, 1, 1)
    xs = torch.arange(width, device=device).view(1, width, 1)
    offs = torch.tensor(window_offsets(kernel_size), device=device)
    yy = ys + offs[:, 0]
    xx = xs + offs[:, 1]
    mask = (yy < 0) | (yy >= height) | (xx < 0) | (xx >= width)
    return mask.reshape(height * width, kernel_size * kernel_size)


@lru_cache(maxsize=128)
def valid_counts(height: int, width: int, kernel_size: int,
                 device: torch.device) -> torch.Tensor:
    """Float [H*W, 1]: how many of the k*k window positions of each token lie inside."""
    mask = outside_mask(height, width, kernel_size, device)
    return (~mask).sum(-1, keepdim=True).float()
