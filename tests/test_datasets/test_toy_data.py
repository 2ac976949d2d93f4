"""The toy datasets: deterministic from the seed, and readable by the real dataset
classes of mmdet, mmseg and mmpretrain."""
import filecmp
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from tools_testing import ROOT, tool_env
from tools_testing import ade64, coco128, imagenet64, toy_root  # noqa: F401 (fixtures)
from mmtransnext.datasets.toy import CLASSES, make_all


def _same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    for sub in cmp.common_dirs:
        _same_tree(a / sub, b / sub)


def test_generator_cli_is_deterministic(tmp_path):
    subprocess.run([sys.executable, ROOT / 'tools/misc/generate_toy_data.py', tmp_path / 'a',
                    '--num-train', '2', '--num-val', '1', '--img-size', '64', '--seed', '3'],
                   check=True, env=tool_env(), cwd=ROOT, capture_output=True)
    for out, seed in (('b', 3), ('c', 4)):
        sizes = dict(img_size=64, num_train=2, num_val=1)
        make_all(str(tmp_path / out), seed=seed, coco=sizes, ade20k=sizes, imagenet=dict(
            img_size=64, num_train_per_class=2, num_val_per_class=1))
    _same_tree(tmp_path / 'a', tmp_path / 'b')
    a = (tmp_path / 'a/ade20k/images/training/ADE_train_00000000.jpg').read_bytes()
    c = (tmp_path / 'c/ade20k/images/training/ADE_train_00000000.jpg').read_bytes()
    assert a != c


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
