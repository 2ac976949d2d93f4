"""ConvGLU's tail for training: fc2(gated(gate, value)) keeping two hidden tensors for
backward instead of five.

Autograd keeps five [B, N, hidden] tensors per ConvGLU (the conv's input, its output for the
activation, the activation and the value for the product, the product for fc2): 5.3x the
block's width each, three quarters of what a TransNeXt-T training step keeps. This function
keeps the gate and the value only and recomputes the depthwise conv, the activation and the
product in backward (elementwise work and a 3x3 depthwise conv; no matmul is recomputed).
Forward and gradients are the same operations as the plain path's (backward recomputes and
multiplies under the autocast state of the forward).
"""
import contextlib

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from mmtransnext.compat import autocast_dtype


class GatedTailRecompute(torch.autograd.Function):
    """``apply(gated, height, width, gate, value, dw_weight, dw_bias, fc2_weight,
    fc2_bias)`` = fc2(gated(gate, value, height, width, dw_weight, dw_bias)), with
    ``gated`` the differentiable hidden map (:meth:`ConvolutionalGLU.gated`)."""

    @staticmethod
    def forward(ctx, gated, height, width, gate, value, dw_weight, dw_bias, fc2_weight,
                fc2_bias):
        ctx.gated, ctx.size = gated, (height, width)
        ctx.device_type = gate.device.type
        ctx.autocast = autocast_dtype(ctx.device_type)  # backward recomputes under it
        ctx.save_for_backward(gate, value, dw_weight, dw_bias, fc2_weight)
        return F.linear(gated(gate, value, height, width, dw_weight, dw_bias), fc2_weight,
                        fc2_bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        gate, value, dw_weight, dw_bias, fc2_weight = ctx.saved_tensors
        needs = ctx.needs_input_grad[3:7]
        leaves = [t.detach().requires_grad_(need)
                  for t, need in zip((gate, value, dw_weight, dw_bias), needs)]
        as_forward = (torch.autocast(ctx.device_type, dtype=ctx.autocast) if ctx.autocast
                      else contextlib.nullcontext())
        with torch.enable_grad(), as_forward:
            hidden = ctx.gated(leaves[0], leaves[1], *ctx.size, leaves[2], leaves[3])
            tokens_out = grad_out.reshape(-1, grad_out.shape[-1])
            grad_fc2_weight = grad_fc2_bias = None
            if ctx.needs_input_grad[7]:
                grad_fc2_weight = tokens_out.t() @ hidden.detach().reshape(-1, hidden.shape[-1])
            if ctx.needs_input_grad[8]:
                grad_fc2_bias = tokens_out.sum(0)
            grad_hidden = grad_out @ fc2_weight
        wanted = [leaf for leaf, need in zip(leaves, needs) if need]
        grads = iter(torch.autograd.grad(hidden, wanted, grad_hidden) if wanted else ())
        return (None, None, None, *[next(grads) if need else None for need in needs],
                grad_fc2_weight, grad_fc2_bias)
