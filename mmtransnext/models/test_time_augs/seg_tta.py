"""Segmentation test-time augmentation in bounded memory. mmseg's SegTTAModel runs every
view first and keeps each view's logits, resized to the full image, until it merges them:
12 views of a 2048 x 2048 image with 150 classes hold about 30 GB. ``RunningSumSegTTAModel``
adds each view's probabilities to one running sum as soon as the view is predicted and
drops that view's logits, so at most one view's logits and the sum are alive; the sum is
taken in the same order from the same zeros, so the predictions are those of
SegTTAModel. It needs mmseg;
mmtransnext.registry.register_task_modules('seg') registers it; tools/test.py --aug-test
uses it in place of SegTTAModel.
"""
from typing import List

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel


class RunningSumSegTTAModel(SegTTAModel):
    """mmseg's SegTTAModel whose views are merged as a running sum (see the module
    docstring).

    Args:
        **kwargs: those of mmseg's ``SegTTAModel`` (``module``, ``data_preprocessor``).
    """

    def _views(self, data) -> list:
        if isinstance(data, dict):
            count = len(data[next(iter(data))])
            return [{key: value[i] for key, value in data.items()} for i in range(count)]
        if isinstance(data, (tuple, list)):
            return [[item[i] for item in data] for i in range(len(data[0]))]
        raise TypeError(f'data should be a dict, tuple or list, got {type(data)}')

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=0) if self.module.out_channels > 1 else logits.sigmoid()

    def test_step(self, data) -> List:
        sums, first, last, count = None, None, None, 0
        for view in self._views(data):
            predictions = self.module.test_step(view)
            if sums is None:
                sums = [torch.zeros(p.seg_logits.data.shape).to(p.seg_logits.data)
                        for p in predictions]
                first = list(predictions)
            for total, sample in zip(sums, predictions):
                total += self._probabilities(sample.seg_logits.data)
                del sample.seg_logits  # this view's logits are not kept
            last, count = predictions, count + 1
        merged = []
        for total, head, sample in zip(sums, first, last):
            total /= count
            if self.module.out_channels == 1:
                threshold = self.module.decode_head.threshold
                pred = (total > threshold).to(total).squeeze(1)
            else:
                pred = total.argmax(dim=0)
            sample.set_data({'pred_sem_seg': PixelData(data=pred)})
            if hasattr(head, 'gt_sem_seg'):
                sample.set_data({'gt_sem_seg': head.gt_sem_seg})
            sample.set_metainfo({'img_path': head.img_path})
            merged.append(sample)
        return merged
