"""``CheckedLoadSegAnnotations``: mmseg's LoadAnnotations whose label maps are checked
where they are read (see checked_loading.py). It needs mmseg;
mmtransnext.registry.register_task_modules('seg') registers it.
"""
from typing import Optional

import numpy as np
from mmseg.datasets.transforms import LoadAnnotations

from .checked_loading import DEFAULT_IGNORE_INDEX, BadDataError, describe_read_error


class CheckedLoadSegAnnotations(LoadAnnotations):
    """mmseg's LoadAnnotations that raises :class:`BadDataError`, naming the label file,
    for a missing or undecodable label map, a label map of another size than its image,
    and label ids outside ``0 .. num_classes - 1`` (after ``reduce_zero_label`` and the
    label map) other than ``ignore_index``.

    Args:
        num_classes (int, optional): the number of classes; None checks no ids.
        ignore_index (int): the label id the loss ignores. Defaults to 255.
        **kwargs: those of mmseg's ``LoadAnnotations``.
    """

    def __init__(self, num_classes: Optional[int] = None,
                 ignore_index: int = DEFAULT_IGNORE_INDEX, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        try:
            super()._load_seg_map(results)
        except Exception as exc:  # noqa: BLE001 (any failure: name the file)
            raise BadDataError(f'{path}: the label map cannot be loaded: '
                               f'{describe_read_error(path, exc)}') from exc
        label = results['gt_seg_map']
        image_shape = results.get('ori_shape')
        if image_shape is not None and tuple(label.shape[:2]) != tuple(image_shape[:2]):
            raise BadDataError(
                f'{path}: the label map is {label.shape[0]}x{label.shape[1]} (h x w) but its '
                f'image {results.get("img_path", "")} is {image_shape[0]}x{image_shape[1]}; '
                'labels must be pixel-aligned with their image')
        if self.num_classes is None:
            return
        ids = np.unique(label)
        bad = ids[(ids >= self.num_classes) & (ids != self.ignore_index)]
        if bad.size:
            shift = ' after reduce_zero_label' if results.get('reduce_zero_label') else ''
            raise BadDataError(
                f'{path}: label id(s) {", ".join(map(str, bad[:10].tolist()))}{shift} '
                f'are outside the {self.num_classes} classes (0..{self.num_classes - 1}; '
                f'{self.ignore_index} is ignored)')
