"""TransNeXt's constructor arguments checked up front, and the opt-in non-finite check.

Every bad value is a ValueError naming the argument, the value and the valid range, raised
when the backbone is built instead of inside the first forward (or never, as a negative
drop-path rate that behaves as 0 would).

Smallest sizes: stage i (stride 4 * 2^i) builds its 'interpolate' position bias on the
``img_size // stride`` token grid, pooled by ``sr_ratio``, so ``img_size`` needs at least
``stride * sr_ratio`` pixels for every stage; the coordinate normalisation divides by
``pretrain_size // stride - 1``, so ``pretrain_size`` needs two tokens at the last stride.
"""
import numbers
from typing import Sequence

import torch

from mmtransnext.models.backbones.arch_settings import stage_stride
from mmtransnext.models.layers.position_bias import min_pretrain_size, size_pair
from mmtransnext.ops.checks import check_window_size


def _check_rate(name: str, value) -> None:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 <= value < 1):
        raise ValueError(f'{name} must be a number in [0, 1), got {value!r}')


def _check_int(name: str, value, minimum: int, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f'{name} must be an integer >= {minimum} ({why}), got {value!r}')
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum} ({why}), got {value}')


def min_img_size(sr_ratios: Sequence[int]) -> int:
    """Smallest img_size whose pooled grid is at least 1x1 in every stage."""
    return max(stage_stride(i) * max(r, 1) for i, r in enumerate(sr_ratios))


def check_backbone_args(settings, img_size, pretrain_size, fixed_pool_size, drop_rate,
                        attn_drop_rate, drop_path_rate) -> None:
    """Raise ValueError for the first bad argument (``settings``: resolved arch)."""
    for i, window in enumerate(settings['window_size']):
        if window is not None:
            try:
                check_window_size(window)
            except ValueError as e:
                raise ValueError(f'arch window_size of stage {i}: {e}') from None
    _check_rate('drop_rate', drop_rate)
    _check_rate('attn_drop_rate', attn_drop_rate)
    _check_rate('drop_path_rate', drop_path_rate)
    sizes = size_pair(img_size)
    if len(sizes) != 2:
        raise ValueError(f'img_size must be an int or (height, width), got {img_size!r}')
    smallest = min_img_size(settings['sr_ratios'])
    for side in sizes:
        _check_int('img_size', side, smallest,
                   'the smallest image whose pooled grid is at least 1x1 in every stage of '
                   'this arch')
    last_stride = stage_stride(len(settings['depths']) - 1)
    _check_int('pretrain_size', pretrain_size, min_pretrain_size(last_stride),
               'two tokens per side at the last stage')
    _check_int('fixed_pool_size', fixed_pool_size, 1, "pooled grid side in 'linear' mode")


def check_finite(x: torch.Tensor, where: str) -> None:
    """FloatingPointError if ``x`` holds NaN or Inf (``where``: the place just run)."""
    if not torch.isfinite(x).all():
        kind = 'NaN' if torch.isnan(x).any() else 'Inf'
        raise FloatingPointError(
            f'TransNeXt check_finite: {kind} values first appear {where} '
            f'({int((~torch.isfinite(x)).sum())} of {x.numel()} values)')
