"""ConvGLU's gate, ``GELU(dwconv3x3(gate)) * value`` on channels-last tokens, fused.

``torch.ops.mmtransnext.conv_glu_gate`` (csrc/conv_glu_gate.h) computes the depthwise conv,
the GELU (erf form; erf to 1.5e-7) and the product per token in one pass over C contiguous
channels, for the rows [row_begin, row_end) of the map: no conv output, GELU output or
product tensor besides the result. Its backward recomputes the conv and GELU. It serves
float32 / float64 CPU tensors where the extension is used (``MMTRANSNEXT_OPS`` auto / ext, as
the window ops) and nothing traces the call (:func:`usable`); elsewhere (bf16 under
autocast, CUDA, tracing, no extension) ConvGLU runs the same math as torch ops.
"""
import torch

from .checks import KERNEL_FLOAT_DTYPES
from .export_guard import tracing
from .sliding_window import _use_ext


def usable(gate) -> bool:
    """Whether :func:`conv_glu_gate` serves these tokens."""
    # tracing first: a traced proxy's device or dtype cannot be compared
    return (not tracing() and gate.device.type == 'cpu' and gate.dtype in KERNEL_FLOAT_DTYPES
            and _use_ext(gate))


def conv_glu_gate(gate, value, weight, bias, height, width, row_begin=0, row_end=None):
    """GELU(dwconv(gate)) * value for the rows [row_begin, row_end) (default: all) of the
    height x width map of ``gate`` [B, height * width, C]; ``value`` holds those rows."""
    return torch.ops.mmtransnext.conv_glu_gate(gate, value, weight, bias, height, width,
                                               row_begin, height if row_end is None else row_end)
