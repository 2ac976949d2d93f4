"""Exact ONNX export of ``adaptive_avg_pool2d`` at any fixed size.

The TorchScript exporter refuses an adaptive average pool whose output size does not
divide the input size (UPerNet's pyramid pooling: scales 1, 2, 3, 6 of the last map; the
pooled path of aggregated attention when H or W is not a multiple of its pool). At a
fixed input size the pool is a fixed linear map along each axis: output i averages input
rows floor(i * n / m) .. ceil((i + 1) * n / m) - 1. Those maps become two constant
matrices, y = P_h @ x @ P_w^T (MatMul); sizes that divide export as AveragePool.
"""
from contextlib import contextmanager

import torch
from torch.onnx import register_custom_op_symbolic, unregister_custom_op_symbolic
from torch.onnx.symbolic_helper import parse_args

SYMBOL = 'aten::adaptive_avg_pool2d'


def pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] averaging weights of a 1-D adaptive average pool."""
    matrix = torch.zeros(n_out, n_in)
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@parse_args('v', 'is')
def adaptive_avg_pool2d_symbolic(g, x, output_size):
    sizes = x.type().sizes()
    if sizes is None or any(s is None for s in sizes[-2:]):
        raise RuntimeError('adaptive_avg_pool2d: the input size is unknown while exporting; '
                           'a fixed input size (--shape H W) is needed')
    (h_in, w_in), (h_out, w_out) = sizes[-2:], output_size
    if h_in % h_out == 0 and w_in % w_out == 0:
        kernel = [h_in // h_out, w_in // w_out]
        return g.op('AveragePool', x, kernel_shape_i=kernel, strides_i=kernel)
    cols = g.op('Constant', value_t=pool_matrix(w_in, w_out).t().contiguous())
    rows = g.op('Constant', value_t=pool_matrix(h_in, h_out))
    return g.op('MatMul', rows, g.op('MatMul', x, cols))


@contextmanager
def exact_adaptive_pool(opset: int):
    """Export ``adaptive_avg_pool2d`` with :func:`adaptive_avg_pool2d_symbolic` inside."""
    register_custom_op_symbolic(SYMBOL, adaptive_avg_pool2d_symbolic, opset)
    try:
        yield
    finally:
        unregister_custom_op_symbolic(SYMBOL, opset)
