"""--aug-test for segmentation merges the views as a running sum: the same predictions as
mmseg's SegTTAModel, with at most one view's logits alive at a time (SegTTAModel keeps
every view's logits, at full image size, until it merges them)."""
import weakref

import pytest
import torch

pytest.importorskip('mmseg')
from mmengine.structures import PixelData  # noqa: E402
from mmseg.models.segmentors import SegTTAModel  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

from mmtransnext.models.test_time_augs.seg_tta import RunningSumSegTTAModel  # noqa: E402

VIEWS, CLASSES, SIZE = 6, 5, 16


class ViewLogits(torch.nn.Module):
    """A segmentor stand-in: each view's logits are drawn from the view's number; it
    records how many logits of earlier views are still alive when a view starts."""

    out_channels = CLASSES

    def __init__(self):
        super().__init__()
        self.alive, self.alive_at_start = [], []

    def test_step(self, view):
        self.alive = [ref for ref in self.alive if ref() is not None]
        self.alive_at_start.append(len(self.alive))
        out = []
        for number, sample in zip(view['inputs'], view['data_samples']):
            generator = torch.Generator().manual_seed(int(number))
            logits = torch.randn(CLASSES, SIZE, SIZE, generator=generator) * 3
            self.alive.append(weakref.ref(logits))
            result = SegDataSample(metainfo=dict(img_path=f'img{int(number) // 100}.png'))
            result.seg_logits = PixelData(data=logits)
            result.gt_sem_seg = sample.gt_sem_seg
            out.append(result)
        return out


def _data(batch=2):
    gt = [SegDataSample() for _ in range(batch)]
    for sample in gt:
        sample.gt_sem_seg = PixelData(data=torch.zeros(1, SIZE, SIZE, dtype=torch.long))
    return dict(inputs=[[torch.tensor(100 * b + v) for b in range(batch)]
                        for v in range(VIEWS)],
                data_samples=[gt for _ in range(VIEWS)])


def test_running_sum_matches_seg_tta_model_in_bounded_memory():
    reference_module, module = ViewLogits(), ViewLogits()
    expected = SegTTAModel(module=reference_module).test_step(_data())
    merged = RunningSumSegTTAModel(module=module).test_step(_data())
    assert len(merged) == len(expected) == 2
    for index, (ours, theirs) in enumerate(zip(merged, expected)):
        assert torch.equal(ours.pred_sem_seg.data, theirs.pred_sem_seg.data)
        # the first view's img_path (mmseg 1.0's SegTTAModel keeps none; later ones keep it)
        assert ours.img_path == f'img{index}.png'
        assert theirs.get('img_path', ours.img_path) == ours.img_path
        assert torch.equal(ours.gt_sem_seg.data, theirs.gt_sem_seg.data)
    assert reference_module.alive_at_start == list(range(0, 2 * VIEWS, 2))  # all kept
    assert module.alive_at_start == [0] * VIEWS  # each view's logits dropped when summed
