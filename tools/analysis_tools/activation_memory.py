"""Activation bytes each aggregated-attention path keeps for backward, from the shapes.

Per windowed stage of a TransNeXt arch at a square input (batch B, fp32 = 4 bytes), what
autograd keeps between forward and backward for the attention core (from the projected
tensors, AttentionInputs, to the output before the projection), beyond those inputs, which
every path keeps (q, q_scaled, key, value, key_pool, value_pool; shown for scale):

  torch   softmax output [B, h, N, k*k + P] + window weights with the learnable term
          [B, h, N, k*k] + the zero-padded key and value maps of the shifted-slice window
          ops 2 x [B, h, (H + k - 1)(W + k - 1), d]
  ext     softmax output + window weights (the compiled window ops save their inputs)
  fused   the log-sum-exp [B, h, N] (the fused CPU op and the Triton kernels: backward
          recomputes the probabilities)

Under 'interpolate' with a y resize (an input size other than img_size) the bias row table
holds the distinct y-resized rows, [h, R', W * Wk] (R' counted by the model's own
position_bias code, about a fifth of the H * Hk row pairs at 2x): the fused paths keep it
(it is their input), the torch paths free it after expanding it; the last column gives the
fused figure then (inputs other than ``--img-size``). Counted from the code of
mmtransnext/ops/attention.py and sliding_window_torch.py, not measured.

Usage: python tools/analysis_tools/activation_memory.py [--arch tiny] [--batch 2]
           [--res 512 1024]
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import sys

import torch

from mmtransnext.analysis.cases import windowed_stages
from mmtransnext.analysis.memory import MB
from mmtransnext.models.backbones.arch_settings import resolve_arch
from mmtransnext.models.layers.position_bias import COORDINATE_CACHE

BYTES = 4  # fp32
PRETRAIN_SIZE = 224  # the configs' pretrain_size: fixes the coordinates, so the rows


def resized_rows(side, sr, stride, img_size):
    """Distinct rows of the bias row table after the y resize from img_size to side."""
    q0 = img_size // stride
    taps, _, _ = COORDINATE_CACHE.resized_rows((q0, q0), (q0 // sr, q0 // sr),
                                               PRETRAIN_SIZE // stride, torch.device('cpu'),
                                               (side, side // sr))
    return taps.shape[0]


def stage_bytes(B, heads, d, side, ks, sr, table_rows):
    """{what: bytes} per block of one stage (square side x side token map; the bias row
    table of ``table_rows`` rows)."""
    N, nk, P = side * side, ks * ks, (side // sr) ** 2
    padded = (side + ks - 1) ** 2
    softmax, window = B * heads * N * (nk + P), B * heads * N * nk
    sizes = dict(inputs=B * heads * (4 * N + 2 * P) * d,
                 torch=softmax + window + 2 * B * heads * padded * d,
                 ext=softmax + window, fused=B * heads * N,
                 table=heads * table_rows * side * (side // sr))
    return {k: v * BYTES for k, v in sizes.items()}, P


def table(arch, batch, resolutions, img_size):
    sr = resolve_arch(arch)['sr_ratios']
    lines = ['| input | stage | tokens | heads x dim | P | blocks | inputs (all paths) MB | '
             'torch MB | ext MB | fused MB | fused, interpolate from img_size MB |',
             '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|']
    for res in resolutions:
        resized = res != img_size  # 'interpolate' then resizes the bias along y too
        total = dict.fromkeys(('inputs', 'torch', 'ext', 'fused', 'table'), 0)
        for stage, heads, d, side, ks, blocks in windowed_stages(arch, res):
            rows = resized_rows(side, sr[stage], res // side, img_size) if resized else 0
            b, P = stage_bytes(batch, heads, d, side, ks, sr[stage], rows)
            for k in total:
                total[k] += b[k] * blocks
            lines.append(
                f'| {res} | {stage + 1} | {side}x{side} | {heads}x{d} | {P} | {blocks} | '
                f'{b["inputs"] * blocks / MB:.1f} | {b["torch"] * blocks / MB:.1f} | '
                f'{b["ext"] * blocks / MB:.1f} | {b["fused"] * blocks / MB:.2f} | '
                + (f'{(b["fused"] + b["table"]) * blocks / MB:.1f} |' if resized else '- |'))
        lines.append(f'| {res} | all | | | | | {total["inputs"] / MB:.1f} | '
                     f'{total["torch"] / MB:.1f} | {total["ext"] / MB:.1f} | '
                     f'{total["fused"] / MB:.2f} | '
                     + (f'{(total["fused"] + total["table"]) / MB:.1f} |' if resized else '- |'))
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='tiny')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--res', type=int, nargs='+', default=[512, 1024])
    p.add_argument('--img-size', type=int, default=512,
                   help='the size the model was built for (interpolate resizes from it)')
    args = p.parse_args(argv)
    print(f'TransNeXt-{args.arch}, batch {args.batch}, fp32, img_size {args.img_size}, per '
          'stage (all its blocks):\n')
    print('\n'.join(table(args.arch, args.batch, args.res, args.img_size)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
