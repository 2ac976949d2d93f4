"""Python-side registration of the torch.ops.mmtransnext operators of ``mmtransnext._ext``.

The C++ module defines the schemas and the CPU / CUDA kernels (csrc/pybind.cpp,
csrc/sliding_window.cpp, csrc/aggregated_attention.cpp). This module adds what torch needs to trace and differentiate them:

  * a fake ("meta") kernel for every op (``register_fake``): shapes, dtypes and
    the same input checks as the C++ kernels, so torch.compile / FakeTensor / meta tensors work;
  * autograd formulas for ``sliding_qk``, ``sliding_av``, ``aggregated_attention``,
    ``cpb_mlp`` and ``conv_glu_gate`` (``register_autograd``) that call the compiled
    ``*_backward`` ops.

Both go through :mod:`.op_registration`, which uses the API this torch has.

The input rules are those of :mod:`.checks` (one copy, shared with the Python entry points).

It is imported by :func:`mmtransnext.ops.ext_loader.load` right after the extension, and by
torch itself when an op needs its fake kernel (on torch >= 2.4 the schema names this module as its
``set_python_module``).
"""
import torch

from mmtransnext import _ext  # noqa: F401  (defines the torch.ops.mmtransnext schemas)

from .checks import (AGGREGATED_INPUTS, N_FLOAT_INPUTS, acc_dtype, check_aggregated_attention,
                     check_av, check_conv_glu_gate, check_cpb_mlp, check_grad, check_qk,
                     check_rpb, check_shape)
from .op_registration import register_autograd, register_fake


_N_AGG = len(AGGREGATED_INPUTS)  # tensor inputs of aggregated_attention, then its ints


def _qk_shape(q, kernel_size):
    return (q.shape[0], q.shape[1], q.shape[2], kernel_size * kernel_size)


# -- fake kernels (outputs are contiguous, as the compiled kernels return them) ------------

@register_fake('mmtransnext::sliding_qk')
def _sliding_qk_fake(q, k, rpb, height, width, kernel_size):
    check_qk('sliding_qk', q, k, height, width, kernel_size)
    check_rpb('sliding_qk', q, rpb, kernel_size)
    return q.new_empty(_qk_shape(q, kernel_size))


@register_fake('mmtransnext::sliding_qk_backward')
def _sliding_qk_backward_fake(grad_attn, q, k, height, width, kernel_size):
    check_qk('sliding_qk_backward', q, k, height, width, kernel_size)
    check_grad('sliding_qk_backward', 'grad_attn', grad_attn, _qk_shape(q, kernel_size), q)
    return (q.new_empty(q.shape), k.new_empty(k.shape),
            q.new_empty((q.shape[1], kernel_size * kernel_size)))


@register_fake('mmtransnext::sliding_av')
def _sliding_av_fake(attn, v, height, width, kernel_size):
    check_av('sliding_av', attn, v, height, width, kernel_size)
    return v.new_empty(v.shape)


@register_fake('mmtransnext::sliding_av_backward')
def _sliding_av_backward_fake(grad_out, attn, v, height, width, kernel_size):
    check_av('sliding_av_backward', attn, v, height, width, kernel_size)
    check_grad('sliding_av_backward', 'grad_out', grad_out, v.shape, v)
    return attn.new_empty(attn.shape), v.new_empty(v.shape)


@register_fake('mmtransnext::aggregated_attention')
def _aggregated_attention_fake(*args):
    tensors, geometry = args[:_N_AGG], args[_N_AGG:]
    check_aggregated_attention('aggregated_attention', tensors, *geometry)
    q = tensors[0]
    return q.new_empty(q.shape), q.new_empty(q.shape[:3], dtype=acc_dtype(q.dtype))


@register_fake('mmtransnext::aggregated_attention_backward')
def _aggregated_attention_backward_fake(grad_out, lse, *args):
    tensors, geometry = args[:_N_AGG], args[_N_AGG:]
    op = 'aggregated_attention_backward'
    check_aggregated_attention(op, tensors, *geometry)
    q = tensors[0]
    check_grad(op, 'grad_out', grad_out, q.shape, q)
    check_shape(op, 'lse', lse, q.shape[:3])
    return [t.new_empty(t.shape) for t in tensors[:N_FLOAT_INPUTS]]


@register_fake('mmtransnext::cpb_mlp')
def _cpb_mlp_fake(rows, cols, weight, bias):
    check_cpb_mlp('cpb_mlp', rows, cols, weight, bias)
    return rows.new_empty((rows.shape[0], cols.shape[0], weight.shape[0]))


@register_fake('mmtransnext::cpb_mlp_backward')
def _cpb_mlp_backward_fake(grad_out, rows, cols, weight):
    op = 'cpb_mlp_backward'
    check_cpb_mlp(op, rows, cols, weight, weight[:, 0])
    check_grad(op, 'grad_out', grad_out, (rows.shape[0], cols.shape[0], weight.shape[0]), rows)
    return (rows.new_empty(rows.shape), cols.new_empty(cols.shape),
            weight.new_empty(weight.shape), weight.new_empty(weight.shape[:1]))


@register_fake('mmtransnext::conv_glu_gate')
def _conv_glu_gate_fake(gate, value, weight, bias, height, width, row_begin, row_end):
    check_conv_glu_gate('conv_glu_gate', gate, value, weight, bias, height, width, row_begin,
                        row_end)
    return value.new_empty(value.shape)


@register_fake('mmtransnext::conv_glu_gate_backward')
def _conv_glu_gate_backward_fake(grad_out, gate, value, weight, bias, height, width):
    op = 'conv_glu_gate_backward'
    check_conv_glu_gate(op, gate, value, weight, bias, height, width, 0, height)
    check_grad(op, 'grad_out', grad_out, value.shape, gate)
    return tuple(t.new_empty(t.shape) for t in (gate, value, weight, bias))


# -- autograd --------------------------------------------------------------------------------

def _qk_setup_context(ctx, inputs, output):
    q, k, _rpb, height, width, kernel_size = inputs
    ctx.save_for_backward(q, k)
    ctx.geometry = (height, width, kernel_size)


def _qk_backward(ctx, grad_attn):
    q, k = ctx.saved_tensors
    grad_q, grad_k, grad_rpb = torch.ops.mmtransnext.sliding_qk_backward(
        grad_attn, q, k, *ctx.geometry)
    return grad_q, grad_k, grad_rpb, None, None, None


def _av_setup_context(ctx, inputs, output):
    attn, v, height, width, kernel_size = inputs
    ctx.save_for_backward(attn, v)
    ctx.geometry = (height, width, kernel_size)


def _av_backward(ctx, grad_out):
    attn, v = ctx.saved_tensors
    grad_attn, grad_v = torch.ops.mmtransnext.sliding_av_backward(grad_out, attn, v,
                                                                  *ctx.geometry)
    return grad_attn, grad_v, None, None, None


register_autograd('mmtransnext::sliding_qk', _qk_backward,
                  setup_context=_qk_setup_context)
register_autograd('mmtransnext::sliding_av', _av_backward,
                  setup_context=_av_setup_context)


def _aggregated_setup_context(ctx, inputs, output):
    ctx.save_for_backward(output[1], *inputs[:_N_AGG])
    ctx.geometry = inputs[_N_AGG:]
    ctx.mark_non_differentiable(output[1])


def _aggregated_backward(ctx, grad_out, _grad_lse):
    lse, *tensors = ctx.saved_tensors
    grads = torch.ops.mmtransnext.aggregated_attention_backward(grad_out, lse, *tensors,
                                                                *ctx.geometry)
    return (*grads, None, None, None, None, None, None)  # pos_rows, then the five ints


register_autograd('mmtransnext::aggregated_attention', _aggregated_backward,
                  setup_context=_aggregated_setup_context)


def _cpb_setup_context(ctx, inputs, output):
    rows, cols, weight, _bias = inputs
    ctx.save_for_backward(rows, cols, weight)


def _cpb_backward(ctx, grad_out):
    return tuple(torch.ops.mmtransnext.cpb_mlp_backward(grad_out, *ctx.saved_tensors))


register_autograd('mmtransnext::cpb_mlp', _cpb_backward, setup_context=_cpb_setup_context)


def _gate_setup_context(ctx, inputs, output):
    gate, value, weight, bias, height, width, row_begin, row_end = inputs
    ctx.save_for_backward(gate, value, weight, bias)
    ctx.size = (height, width)
    ctx.whole_map = (row_begin, row_end) == (0, height)


def _gate_backward(ctx, grad_out):
    if not ctx.whole_map:
        raise RuntimeError('conv_glu_gate: backward needs the whole map (row_begin = 0, '
                           'row_end = height); differentiate the unbanded call')
    grads = torch.ops.mmtransnext.conv_glu_gate_backward(grad_out, *ctx.saved_tensors,
                                                         *ctx.size)
    return (*grads, None, None, None, None)


register_autograd('mmtransnext::conv_glu_gate', _gate_backward,
                  setup_context=_gate_setup_context)
