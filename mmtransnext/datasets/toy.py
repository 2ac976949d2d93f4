"""Small synthetic datasets in the real on-disk formats, deterministic from a seed.

Every image shows coloured shapes on a noisy textured background. A shape's class fixes
both its outline and its colour (with jitter), so a small network learns the task in
minutes, and the metrics of the real evaluators (COCO bbox/segm mAP, ADE20K mIoU,
ImageNet top-1) move far above chance.

* :func:`make_coco`: ``train2017/``, ``val2017/`` JPEGs and
  ``annotations/instances_{train,val}2017.json`` (boxes, polygon masks, areas), the layout
  of mmdet's ``configs/_base_/datasets/coco_instance.py`` (``data_root`` = the folder).
* :func:`make_ade20k`: ``images/{training,validation}/*.jpg`` and
  ``annotations/{training,validation}/*.png`` label maps with ADE20K's conventions: 0 =
  unlabelled (ignored by mmseg's ``reduce_zero_label``), 1..150 = classes. The background
  is 1 (ADE "wall"), shape k is 2 + k; a 2-pixel frame is 0.
* :func:`make_imagenet`: ``train/<class>/*.JPEG``, ``val/<class>/*.JPEG`` and
  ``meta/{train,val}.txt`` (``<class>/<file> <label>``) for mmpretrain's ``ImageNet``
  dataset (the meta files carry the labels, so its 1000-class metainfo is kept);
  folder names sort in label order, so ``CustomDataset`` gives the same labels.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

# name, BGR colour; alphabetical, so folder order == label order
SHAPES: Tuple[Tuple[str, Tuple[int, int, int]], ...] = (
    ('circle', (40, 40, 220)),     # red
    ('diamond', (40, 200, 230)),   # yellow
    ('square', (60, 190, 60)),     # green
    ('triangle', (220, 90, 40)),   # blue
)
CLASSES = tuple(name for name, _ in SHAPES)
# ADE20K label values: 0 unlabelled, 1 background ('wall'), 2.. the shapes
ADE_BACKGROUND = 1
ADE_FIRST_SHAPE = 2


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Grey-brown low-frequency texture plus pixel noise, uint8 BGR."""
    coarse = rng.uniform(70, 150, size=(4, 4, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 8, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Outline of ``shape`` with circumradius ``r``: float32 [N, 2] (x, y)."""
    if shape == 'circle':
        n, offset = 32, 0.0
    elif shape == 'square':
        n, offset = 4, math.pi / 4
    elif shape == 'diamond':
        n, offset = 4, 0.0
    elif shape == 'triangle':
        n, offset = 3, -math.pi / 2
    else:
        raise ValueError(f'unknown shape {shape!r}')
    if shape in ('square', 'diamond'):
        angle = 0.0  # keep them distinguishable (a rotated square is a diamond)
    t = offset + angle + 2 * math.pi * np.arange(n) / n
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1).astype(np.float32)


def _place(rng, size, count, min_frac, max_frac):
    """Up to ``count`` non-overlapping discs (cx, cy, r) inside the image."""
    placed = []
    for _ in range(count * 20):
        if len(placed) == count:
            break
        r = rng.uniform(min_frac, max_frac) * size / 2
        cx, cy = rng.uniform(r + 2, size - r - 2, size=2)
        if all(math.hypot(cx - x, cy - y) > r + q + 2 for x, y, q in placed):
            placed.append((cx, cy, r))
    return placed


def _draw(rng, img, poly, colour):
    jitter = rng.normal(0, 12, size=3)
    fill = np.clip(np.array(colour, np.float32) + jitter, 0, 255)
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    noise = rng.normal(0, 6, size=img.shape).astype(np.float32)
    img[mask > 0] = np.clip(fill + noise[mask > 0], 0, 255)
    return mask


def render_scene(rng: np.random.Generator, size: int, max_objects: int = 3,
                 min_frac: float = 0.25, max_frac: float = 0.5):
    """An image with 1..max_objects shapes: (uint8 BGR image, [(class, polygon, mask)])."""
    img = _background(rng, size)
    objects = []
    count = int(rng.integers(1, max_objects + 1))
    for cx, cy, r in _place(rng, size, count, min_frac, max_frac):
        label = int(rng.integers(len(SHAPES)))
        shape, colour = SHAPES[label]
        poly = _polygon(shape, cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
        poly = np.clip(poly, 0, size - 1)
        objects.append((label, poly, _draw(rng, img, poly, colour)))
    return img.astype(np.uint8), objects


def _write_jpeg(path, img):
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f'could not write {path}')


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, {'train': 0, 'val': 1}[split], index])


def make_coco(root: str, num_train: int = 8, num_val: int = 4, img_size: int = 128,
              seed: int = 0, max_objects: int = 3) -> Dict[str, str]:
    """COCO instances: ``root/{train,val}2017/*.jpg`` and
    ``root/annotations/instances_{train,val}2017.json``. Returns the written paths."""
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(CLASSES)]
    paths = {}
    for split, num in (('train', num_train), ('val', num_val)):
        images, annotations = [], []
        for i in range(num):
            rng = _rng(seed, split, i)
            img, objects = render_scene(rng, img_size, max_objects)
            file_name = f'{i:012d}.jpg'
            _write_jpeg(osp.join(root, f'{split}2017', file_name), img)
            image_id = i + 1
            images.append(dict(id=image_id, file_name=file_name, width=img_size,
                               height=img_size))
            for label, poly, mask in objects:
                x0, y0 = poly.min(axis=0)
                x1, y1 = poly.max(axis=0)
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=label + 1,
                    bbox=[round(float(x0), 2), round(float(y0), 2),
                          round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
                    area=float(mask.sum()),
                    segmentation=[[round(float(v), 2) for v in poly.reshape(-1)]],
                    iscrowd=0))
        ann_path = osp.join(root, 'annotations', f'instances_{split}2017.json')
        os.makedirs(osp.dirname(ann_path), exist_ok=True)
        with open(ann_path, 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories,
                           info=dict(description='mmtransnext toy COCO', seed=seed),
                           licenses=[]), f)
        paths[split] = ann_path
    return paths


def make_ade20k(root: str, num_train: int = 8, num_val: int = 4, img_size: int = 64,
                seed: int = 0, max_objects: int = 3) -> Dict[str, str]:
    """ADEChallengeData2016 layout under ``root``. Returns the image folders."""
    paths = {}
    for split, folder, num in (('train', 'training', num_train),
                               ('val', 'validation', num_val)):
        for i in range(num):
            rng = _rng(seed, split, i)
            img, objects = render_scene(rng, img_size, max_objects)
            label_map = np.full((img_size, img_size), ADE_BACKGROUND, np.uint8)
            for label, _, mask in objects:
                label_map[mask > 0] = ADE_FIRST_SHAPE + label
            label_map[:2, :] = label_map[-2:, :] = 0
            label_map[:, :2] = label_map[:, -2:] = 0
            name = f'ADE_{split}_{i:08d}'
            _write_jpeg(osp.join(root, 'images', folder, name + '.jpg'), img)
            ann = osp.join(root, 'annotations', folder, name + '.png')
            os.makedirs(osp.dirname(ann), exist_ok=True)
            cv2.imwrite(ann, label_map)
        paths[split] = osp.join(root, 'images', folder)
    return paths


def make_imagenet(root: str, num_train_per_class: int = 4, num_val_per_class: int = 2,
                  img_size: int = 64, seed: int = 0) -> Dict[str, str]:
    """ImageNet-style folders and meta files under ``root``. Returns the meta files."""
    paths = {}
    for split, per_class in (('train', num_train_per_class), ('val', num_val_per_class)):
        lines: List[str] = []
        for label, (shape, colour) in enumerate(SHAPES):
            for j in range(per_class):
                rng = _rng(seed, split, label * 100000 + j)
                img = _background(rng, img_size)
                (cx, cy, r), = _place(rng, img_size, 1, 0.4, 0.8)
                poly = _polygon(shape, cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
                _draw(rng, img, np.clip(poly, 0, img_size - 1), colour)
                rel = f'{shape}/{split}_{label}_{j:05d}.JPEG'
                _write_jpeg(osp.join(root, split, rel), img.astype(np.uint8))
                lines.append(f'{rel} {label}')
        meta = osp.join(root, 'meta', f'{split}.txt')
        os.makedirs(osp.dirname(meta), exist_ok=True)
        with open(meta, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        paths[split] = meta
    return paths


def make_all(root: str, tasks: Sequence[str] = ('coco', 'ade20k', 'imagenet'),
             seed: int = 0, **sizes) -> Dict[str, str]:
    """Write the requested datasets under ``root/{coco,ade20k,imagenet}``."""
    makers = dict(coco=make_coco, ade20k=make_ade20k, imagenet=make_imagenet)
    out = {}
    for task in tasks:
        if task not in makers:
            raise ValueError(f'unknown toy dataset {task!r}; choose from {sorted(makers)}')
        kwargs = sizes.get(task, {})
        makers[task](osp.join(root, task), seed=seed, **kwargs)
        out[task] = osp.join(root, task)
    return out


__all__ = ['CLASSES', 'SHAPES', 'make_coco', 'make_ade20k', 'make_imagenet', 'make_all',
           'render_scene']
