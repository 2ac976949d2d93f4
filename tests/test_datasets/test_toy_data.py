"""The toy datasets: deterministic from the seed, and readable by the real dataset
classes of mmdet, mmseg and mmpretrain. (tools/misc/generate_toy_data.py:
tests/test_tools/test_generate_toy_data.py.)"""
import json

import numpy as np
from PIL import Image

from mmtransnext.datasets.toy import CLASSES, make_all


def test_formats(coco128, ade64, imagenet64):
    from mmdet.datasets import CocoDataset
    from mmpretrain.datasets import ImageNet
    from mmseg.datasets import ADE20KDataset

    coco = CocoDataset(data_root=f'{coco128}/', ann_file='annotations/instances_train2017.json',
                       data_prefix=dict(img='train2017/'), metainfo=dict(classes=CLASSES),
                       pipeline=[], test_mode=True)
    assert len(coco) == 4
    info = coco[0]
    assert info['instances'] and all(len(i['mask'][0]) >= 6 for i in info['instances'])
    with open(coco128 / 'annotations/instances_val2017.json') as f:
        ann = json.load(f)
    assert [c['name'] for c in ann['categories']] == list(CLASSES)

    ade = ADE20KDataset(data_root=str(ade64), data_prefix=dict(
        img_path='images/training', seg_map_path='annotations/training'), pipeline=[])
    assert len(ade) == 4 and ade.reduce_zero_label
    label = np.array(Image.open(ade[0]['seg_map_path']))
    assert set(np.unique(label)) <= {0, 1, 2, 3, 4, 5} and 0 in label and 1 in label

    inet = ImageNet(data_root=str(imagenet64), split='train', pipeline=[])
    assert len(inet) == 16 and len(inet.metainfo['classes']) == 1000
    assert sorted({inet.get_cat_ids(i)[0] for i in range(len(inet))}) == [0, 1, 2, 3]


def test_make_all(tmp_path):
    out = make_all(str(tmp_path), tasks=('imagenet',), seed=0,
                   imagenet=dict(num_train_per_class=1, num_val_per_class=1, img_size=48))
    assert set(out) == {'imagenet'}
    assert len(list((tmp_path / 'imagenet' / 'train').rglob('*.JPEG'))) == len(CLASSES)
