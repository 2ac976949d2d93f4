"""Position bias as constants of an exported graph.

At a fixed input size the bias of every block depends on the weights and the size only,
not on the image. Left to the tracer, the log-CPB MLP (and the coordinate tables' Unique)
would stay in the ONNX graph, as the TorchScript exporter's constant folding does not fold
Unique, Gemm or Relu. Inside :func:`frozen_position_bias` each block computes its bias once,
eagerly, and then returns that tensor, which the tracer records as a constant.
"""
from contextlib import contextmanager

import torch

from mmtransnext.models.layers.position_bias import LogCPB


def _memoised(compute):
    table = {}

    def position_bias(height, width):
        key = int(height), int(width)  # sizes are 0-d tensors while the exporter traces
        if key not in table:
            if torch.jit.is_tracing():
                raise RuntimeError(f'position bias at {key[0]}x{key[1]} tokens was not '
                                   'precomputed: run the model once on the export input first')
            with torch.no_grad():
                result = compute(*key)
            table[key] = (tuple(None if t is None else t.detach() for t in result)
                          if isinstance(result, tuple) else result.detach())
        return table[key]
    return position_bias


@contextmanager
def frozen_position_bias(model, x):
    """Within the block every LogCPB in ``model`` returns the bias computed for the input
    ``x`` (one eager forward fills the tables)."""
    blocks = [m for m in model.modules() if isinstance(m, LogCPB)]
    for m in blocks:
        m.position_bias = _memoised(m.position_bias)
        m.position_bias_rows = _memoised(m.position_bias_rows)
    try:
        with torch.no_grad():
            model(x)
        yield
    finally:
        for m in blocks:
            del m.position_bias, m.position_bias_rows  # the class's methods again
