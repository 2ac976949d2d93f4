"""Image I/O and heat-map rendering shared by the analysis tools (exact pixel sizes)."""
import glob
import os

import numpy as np
import torch
from PIL import Image

from mmtransnext.datasets.image_files import is_image_file

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def list_images(pattern_or_dir, limit=None):
    if os.path.isdir(pattern_or_dir):
        paths = [p for p in sorted(glob.glob(os.path.join(pattern_or_dir, '**', '*'),
                                             recursive=True)) if is_image_file(p)]
    else:
        paths = sorted(glob.glob(pattern_or_dir))
    if not paths:
        raise FileNotFoundError(f'no images found at {pattern_or_dir!r}')
    return paths[:limit] if limit else paths


def load_image(path, size):
    """RGB uint8 array resized to size (H, W)."""
    img = Image.open(path).convert('RGB').resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(img)


def normalise(rgb, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8 [H, W, 3] -> float [1, 3, H, W] as mm data preprocessors feed the backbone."""
    x = torch.from_numpy(rgb).float().permute(2, 0, 1)
    x = (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return x.unsqueeze(0)


def preprocessor_stats(cfg):
    dp = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    return tuple(dp.get('mean', IMAGENET_MEAN)), tuple(dp.get('std', IMAGENET_STD))


def heatmap(values, cmap='inferno'):
    """[H, W] float -> uint8 RGB [H, W, 3], values scaled to [0, 1] first."""
    from matplotlib import colormaps
    v = np.asarray(values, dtype=np.float64)
    span = v.max() - v.min()
    v = (v - v.min()) / span if span > 0 else np.zeros_like(v)
    return (colormaps[cmap](v)[..., :3] * 255).astype(np.uint8)


def blend(rgb, heat, alpha=0.6):
    return (rgb * (1 - alpha) + heat * alpha).astype(np.uint8)


def save_png(rgb, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path
