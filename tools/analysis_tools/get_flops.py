"""Parameters and FLOPs of a config's model at an input size.

Counts with mmtransnext.analysis.flops.count_flops: mmengine's FlopAnalyzer (fvcore rules:
one fused multiply-add = 1 FLOP; convolutions, linear layers, matmuls incl. the attention
ones, norms, resizes; softmax, GELU and other element-wise ops are not counted) plus the
sliding-window ops, which the tracer cannot see as matmuls (H*W*k*k*C multiply-adds each
for the similarity and the weighted sum, per block).

Usage: python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--cfg-options ...]
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse

import torch

from mmtransnext.analysis.flops import count_flops
from mmtransnext.cli.config_loading import DictAction, build_model, load_config
from mmtransnext.models.parts import backbone_of


class _TensorForward(torch.nn.Module):
    """model(x, mode='tensor') for mm models; plain model(x) otherwise."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        try:
            return self.model(x, mode='tensor')
        except TypeError:
            return self.model(x)


def model_flops(cfg, shape):
    model = build_model(cfg)
    x = torch.randn(1, 3, *shape)
    try:
        flops, params = count_flops(_TensorForward(model), (x,))
        scope = 'whole model'
    except Exception as e:  # e.g. detectors whose tensor mode needs data samples
        print(f'whole model not traceable without data ({type(e).__name__}); '
              'counting backbone (+ neck)')
        parts = [backbone_of(model)] + ([model.neck] if getattr(model, 'neck', None) else [])
        flops, params = count_flops(torch.nn.Sequential(*parts), (x,))
        scope = 'backbone + neck' if len(parts) > 1 else 'backbone'
    return flops, params, scope


def main():
    parser = argparse.ArgumentParser(description='FLOPs and parameters of a config\'s model')
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    flops, params, scope = model_flops(cfg, args.shape)
    print(f'input 3x{args.shape[0]}x{args.shape[1]} ({scope}): '
          f'{flops / 1e9:.2f} GFLOPs, {params / 1e6:.2f} M parameters')


if __name__ == '__main__':
    main()
