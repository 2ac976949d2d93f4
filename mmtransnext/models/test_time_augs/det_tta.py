"""Test-time augmentation for instance segmentation (Mask R-CNN): mmdet's DetTTAModel
refuses predictions with masks. It needs mmdet;
mmtransnext.registry.register_task_modules('det') registers ``InstanceSegTTAModel``, which
tools/test.py --aug-test uses for configs with a mask head.
"""
from typing import List

import torch
from mmcv.ops import batched_nms
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData


class InstanceSegTTAModel(DetTTAModel):
    """DetTTAModel that carries masks: boxes of all views (flips undone) go through one
    class-wise NMS, and each kept box keeps the mask its own view predicted (flipped back).
    Predictions are at the original image size (``rescale=True``), so masks of different
    scales line up.
    """

    def _merge_single_sample(self, data_samples: List[DetDataSample]) -> DetDataSample:
        if data_samples[0].pred_instances.get('masks', None) is None:
            return super()._merge_single_sample(data_samples)
        bboxes, scores, labels, masks, metas = [], [], [], [], []
        for sample in data_samples:
            pred = sample.pred_instances
            mask = pred.masks
            if sample.metainfo.get('flip', False):
                direction = sample.metainfo.get('flip_direction', 'horizontal')
                dims = {'horizontal': [-1], 'vertical': [-2], 'diagonal': [-2, -1]}[direction]
                mask = mask.flip(dims)
            bboxes.append(pred.bboxes)
            scores.append(pred.scores)
            labels.append(pred.labels)
            masks.append(torch.as_tensor(mask))
            metas.append(sample.metainfo)
        merged_bboxes, merged_scores = self.merge_aug_bboxes(bboxes, scores, metas)
        merged_labels = torch.cat(labels)
        merged_masks = torch.cat(masks)
        if merged_bboxes.numel() == 0:
            return data_samples[0]
        dets, keep = batched_nms(merged_bboxes, merged_scores, merged_labels,
                                 self.tta_cfg.nms)
        keep = keep[:self.tta_cfg.max_per_img]
        dets = dets[:self.tta_cfg.max_per_img]
        results = InstanceData()
        results.bboxes = dets[:, :-1]
        results.scores = dets[:, -1]
        results.labels = merged_labels[keep]
        results.masks = merged_masks[keep]
        merged = data_samples[0]
        merged.pred_instances = results
        return merged


__all__ = ['InstanceSegTTAModel']
