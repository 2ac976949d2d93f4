"""Parameters and FLOPs of a config's model at an input size.

Counts with mmengine's FlopAnalyzer (fvcore rules: one fused multiply-add = 1 FLOP;
convolutions, linear layers, matmuls incl. the attention ones, norms, resizes; softmax,
GELU and other element-wise ops are not counted). The sliding-window ops (compiled kernels
or their PyTorch slices, which the tracer cannot see as matmuls) are added analytically:
H*W*k*k*C multiply-adds each for the similarity and the weighted sum, per block.

Usage: python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--cfg-options ...]
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import os
from contextlib import contextmanager

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count

from mmtransnext.cli.config_loading import DictAction, build_model, load_config
from mmtransnext.models.layers import AggregatedAttention
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


@contextmanager
def torch_window_ops():
    """Route the window ops through the traceable PyTorch path for the duration only."""
    previous = os.environ.get('MMTRANSNEXT_OPS')
    os.environ['MMTRANSNEXT_OPS'] = 'torch'
    try:
        yield
    finally:
        if previous is None:
            del os.environ['MMTRANSNEXT_OPS']
        else:
            os.environ['MMTRANSNEXT_OPS'] = previous


def count_flops(model, inputs):
    """(FLOPs, parameters) of ``model(*inputs)``, window ops included: each aggregated
    attention adds 2 * B * N * k * k * C as the analyzer's trace runs through it."""
    window = 0

    def count_window_ops(module, args, _):
        nonlocal window
        x = args[0]
        window += 2 * x.shape[0] * x.shape[1] * module.window_size ** 2 * x.shape[2]

    handles = [m.register_forward_hook(count_window_ops) for m in model.modules()
               if isinstance(m, AggregatedAttention)]
    try:
        with torch_window_ops():
            analyzer = FlopAnalyzer(model, inputs)
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            traced = analyzer.total()
    finally:
        for h in handles:
            h.remove()
    return traced + window, parameter_count(model)['']


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
