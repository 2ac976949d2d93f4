"""Where one query pixel looks: aggregated-attention weights of a chosen block.

For the token under the query pixel, the softmax weights of the window path (its k x k
neighbourhood at full resolution) and of the pooled path (the pooled grid covering the
whole image) are drawn over the image, averaged over heads (or one head). Output: one PNG,
three panels of size x size: the image with the query marked, the window weights, the
pooled weights.

Usage: python tools/analysis_tools/visualize_attention.py CONFIG --image IMG
          [--checkpoint CKPT] [--stage 0] [--block 0] [--query Y X] [--size 224]
          [--head H] [--out attention.png]
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse

import numpy as np
import torch
from PIL import Image

from mmtransnext.cli.config_loading import DictAction, build_model, load_config
from mmtransnext.cli.visualization import (blend, heatmap, load_image, normalise,
                                           preprocessor_stats, save_png)
from mmtransnext.models.layers import AggregatedAttention
from mmtransnext.models.parts import backbone_of
from mmtransnext.ops.window_geometry import window_offsets


def capture_attention(backbone, x, stage, block):
    """(attn_local [h, N, k*k], attn_pool [h, N, P], (H, W), pool (ph, pw)) of one block."""
    attn = getattr(backbone, f'block{stage + 1}')[block].attn
    if not isinstance(attn, AggregatedAttention):
        raise ValueError(f'stage {stage} uses full attention (no window and pooled paths); '
                         'choose a stage with sr_ratio > 1')
    captured = {}

    def hook(module, args):
        captured['args'] = args

    handle = attn.register_forward_pre_hook(hook)
    with torch.no_grad():
        backbone(x)
        handle.remove()
        tokens, height, width = captured['args']
        *_, attn_local, attn_pool = attn.attention_weights(tokens, height, width)
    return attn_local[0], attn_pool[0], (height, width), attn.key_grid(height, width)


def query_maps(attn_local, attn_pool, grid, pool, query_yx, size, head=None):
    """Window weights on the token grid and pooled weights on the pooled grid of the
    token under pixel ``query_yx`` of a ``size`` image."""
    height, width = grid
    qy = min(query_yx[0] * height // size[0], height - 1)
    qx = min(query_yx[1] * width // size[1], width - 1)
    p = qy * width + qx
    pick = (lambda a: a[head]) if head is not None else (lambda a: a.mean(0))
    local, pooled = pick(attn_local[:, p]), pick(attn_pool[:, p])
    kernel = int(round(attn_local.shape[-1] ** 0.5))
    window = np.zeros((height, width))
    for j, (dy, dx) in enumerate(window_offsets(kernel)):
        if 0 <= qy + dy < height and 0 <= qx + dx < width:
            window[qy + dy, qx + dx] = local[j].item()
    pooled = pooled.view(*pool).numpy()
    return window, pooled


def _upsample(values, size):
    img = Image.fromarray(values.astype(np.float32), mode='F')
    return np.asarray(img.resize((size[1], size[0]), Image.NEAREST))


def _mark(rgb, yx, radius=3):
    out = rgb.copy()
    y0, y1 = max(yx[0] - radius, 0), min(yx[0] + radius + 1, rgb.shape[0])
    x0, x1 = max(yx[1] - radius, 0), min(yx[1] + radius + 1, rgb.shape[1])
    out[y0:y1, x0:x1] = (0, 255, 0)
    return out


def main():
    parser = argparse.ArgumentParser(description='Attention maps of one query pixel')
    parser.add_argument('config')
    parser.add_argument('--image', required=True)
    parser.add_argument('--checkpoint')
    parser.add_argument('--stage', type=int, default=0, help='0-based stage')
    parser.add_argument('--block', type=int, default=0, help='0-based block in the stage')
    parser.add_argument('--query', type=int, nargs=2, metavar=('Y', 'X'),
                        help='query pixel (default: image centre)')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--head', type=int, help='one head (default: mean over heads)')
    parser.add_argument('--out', default='work_dirs/attention.png')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = load_config(args.config, args.cfg_options)
    backbone = backbone_of(build_model(cfg, args.checkpoint))
    size = (args.size, args.size)
    query = tuple(args.query) if args.query else (size[0] // 2, size[1] // 2)
    rgb = load_image(args.image, size)
    x = normalise(rgb, *preprocessor_stats(cfg))
    attn_local, attn_pool, grid, pool = capture_attention(backbone, x, args.stage, args.block)
    window, pooled = query_maps(attn_local, attn_pool, grid, pool, query, size, args.head)
    share = window.sum() / (window.sum() + pooled.sum())
    panels = [_mark(rgb, query), _mark(blend(rgb, heatmap(_upsample(window, size))), query),
              _mark(blend(rgb, heatmap(_upsample(pooled, size))), query)]
    path = save_png(np.concatenate(panels, axis=1), args.out)
    print(f'stage {args.stage} block {args.block}, query {query}, token grid {grid}, '
          f'pooled grid {pool}: window path holds {share:.1%} of the weight -> {path}')


if __name__ == '__main__':
    main()
