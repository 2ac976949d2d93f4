"""Effective receptive field of each TransNeXt stage, averaged over images.

For every image, the gradient of the centre point of a stage's output (ReLU, then summed
over channels, as in RepLKNet's ERF analysis) with respect to the input pixels, absolute
and summed over colour channels, is accumulated; the mean is shown on a log scale,
log10(erf + 1), as a heat map the size of the input (one PNG per stage). Also written:
erf.json with, per stage, the fraction of the image area holding 20/30/50/99 % of the
total contribution (smaller = more local).

Usage: python tools/analysis_tools/visualize_erf.py CONFIG --images DIR
          [--checkpoint CKPT] [--num-images 50] [--size 224] [--out-dir erf/] [--seed 0]
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import json
import os

import numpy as np
import torch

from mmtransnext.cli.config_loading import DictAction, build_model, load_config
from mmtransnext.cli.visualization import (heatmap, list_images, load_image, normalise,
                                           preprocessor_stats, save_png)
from mmtransnext.models.parts import backbone_of

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)


def accumulate_erf(backbone, images):
    """Sum over images of |d centre(stage output) / d input|, per stage: [S, H, W].

    The centre feature goes through a ReLU before the channel sum: every stage ends in a
    LayerNorm, and the channel sum of a LayerNorm output with unit weight is the constant
    sum of its bias, whose gradient is rounding noise."""
    backbone.out_indices = tuple(range(backbone.num_stages))
    total = None
    for x in images:
        x = x.clone().requires_grad_(True)
        outs = backbone(x)
        maps = []
        for i, out in enumerate(outs):
            centre = out[:, :, out.shape[2] // 2, out.shape[3] // 2].relu().sum()
            grad, = torch.autograd.grad(centre, x, retain_graph=i < len(outs) - 1)
            maps.append(grad.abs().sum(dim=(0, 1)))
        stacked = torch.stack(maps)
        total = stacked if total is None else total + stacked
    return total / len(images)


def area_ratios(erf):
    """Fraction of pixels needed to hold each threshold of the total contribution."""
    flat = np.sort(erf.ravel())[::-1]
    cum = np.cumsum(flat) / flat.sum()
    return {f'{int(t * 100)}%': float((np.searchsorted(cum, t) + 1) / flat.size)
            for t in THRESHOLDS}


def main():
    parser = argparse.ArgumentParser(description='ERF heat maps of each stage')
    parser.add_argument('config')
    parser.add_argument('--images', required=True, help='image folder or glob')
    parser.add_argument('--checkpoint')
    parser.add_argument('--num-images', type=int, default=50)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--out-dir', default='work_dirs/erf')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random init when no --checkpoint is given')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    cfg = load_config(args.config, args.cfg_options)
    backbone = backbone_of(build_model(cfg, args.checkpoint))
    mean, std = preprocessor_stats(cfg)
    paths = list_images(args.images, args.num_images)
    size = (args.size, args.size)
    images = [normalise(load_image(p, size), mean, std) for p in paths]
    erf = accumulate_erf(backbone, images).numpy()

    summary = {'images': len(paths), 'size': args.size, 'stages': {}}
    for i, stage_erf in enumerate(erf):
        log_erf = np.log10(stage_erf + 1)
        path = save_png(heatmap(log_erf), os.path.join(args.out_dir, f'erf_stage{i + 1}.png'))
        summary['stages'][f'stage{i + 1}'] = area_ratios(stage_erf)
        print(f'stage {i + 1}: {path}  area ratios {summary["stages"][f"stage{i + 1}"]}')
    with open(os.path.join(args.out_dir, 'erf.json'), 'w') as f:
        json.dump(summary, f, indent=2)


if __name__ == '__main__':
    main()
