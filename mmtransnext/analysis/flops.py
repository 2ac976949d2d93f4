"""Multiply-adds of a model's forward: mmengine's FlopAnalyzer (fvcore rules: one fused
multiply-add = 1 FLOP) plus the sliding-window ops, which the tracer cannot see as
matmuls: H*W*k*k*C multiply-adds each for the similarity and the weighted sum, per block."""
import os
from contextlib import contextmanager


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
    from mmengine.analysis import FlopAnalyzer, parameter_count

    from mmtransnext.models.layers import AggregatedAttention
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


def forward_macs(model, x):
    """Multiply-adds of ``model(x)`` under no_grad; afterwards the model's inference caches
    are cleared, so that the count's forward does not warm the timed ones."""
    import torch
    with torch.no_grad():
        macs, _ = count_flops(model, (x,))
    for m in model.modules():
        if hasattr(m, 'clear_bias_cache'):
            m.clear_bias_cache()
    return int(macs)
