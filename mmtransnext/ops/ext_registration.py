"""Python-side registration of the torch.ops.mmtransnext operators of ``mmtransnext._ext``.

The C++ module defines the schemas and the CPU / CUDA kernels (csrc/pybind.cpp,
csrc/sliding_window.cpp). This module adds what torch needs to trace and differentiate them:

  * a fake ("meta") kernel for every op (``torch.library.register_fake``): shapes, dtypes and
    the same input checks as the C++ kernels, so torch.compile / FakeTensor / meta tensors work;
  * autograd formulas for ``sliding_qk`` and ``sliding_av`` (``torch.library.register_autograd``)
    that call the compiled ``sliding_qk_backward`` / ``sliding_av_backward`` ops.

It is imported by :func:`mmtransnext.ops.ext_loader.load` right after the extension, and by
torch itself when an op needs its fake kernel (the schema names this module as its
``set_python_module``).
"""
import torch

from mmtransnext import _ext  # noqa: F401  (defines the torch.ops.mmtransnext schemas)

__all__ = ['check_qk', 'check_av']


def _check_window(op, height, width, kernel_size):
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'{op}: window size must be a positive odd integer (3, 5, 7, ...), got '
                         f'{kernel_size}: the window is centred on its query token, which needs '
                         'an odd size.')
    torch._check(height >= 1 and width >= 1,
                 lambda: f'{op}: height and width must be positive, got {height} x {width}')


def _check_pair(op, na, a, nb, b):
    if a.dim() != 4 or b.dim() != 4:
        raise ValueError(f'{op}: expected 4-D [B, heads, N, C] tensors, got {na} '
                         f'{tuple(a.shape)} and {nb} {tuple(b.shape)}')
    if a.dtype != b.dtype:
        raise TypeError(f'{op}: mixed dtypes {a.dtype} ({na}) and {b.dtype} ({nb}); cast both '
                        'to one dtype')
    if a.device != b.device:
        raise RuntimeError(f'{op}: tensors on different devices ({na} on {a.device}, {nb} on '
                           f'{b.device}); move them to one device')
    for i in range(3):
        torch._check(a.shape[i] == b.shape[i],
                     lambda: f'{op}: batch, heads and tokens must match, got {na} '
                             f'{tuple(a.shape)} and {nb} {tuple(b.shape)}')


def _check_tokens(op, a, height, width):
    torch._check(a.shape[2] == height * width,
                 lambda: f'{op}: H*W = {height}*{width} = {height * width} but the tensors hold '
                         f'N = {a.shape[2]} tokens')


def check_qk(op, q, k, height, width, kernel_size):
    _check_window(op, height, width, kernel_size)
    _check_pair(op, 'q', q, 'k', k)
    torch._check(q.shape[3] == k.shape[3],
                 lambda: f'{op}: head_dim of q ({q.shape[3]}) and k ({k.shape[3]}) differ')
    _check_tokens(op, q, height, width)


def check_av(op, attn, v, height, width, kernel_size):
    _check_window(op, height, width, kernel_size)
    _check_pair(op, 'attn', attn, 'v', v)
    nk = kernel_size * kernel_size
    torch._check(attn.shape[3] == nk,
                 lambda: f'{op}: attn has {attn.shape[3]} window entries, kernel_size '
                         f'{kernel_size} needs {nk}')
    _check_tokens(op, v, height, width)


def _check_like(op, name, t, shape, like):
    torch._check(tuple(t.shape) == tuple(shape),
                 lambda: f'{op}: {name} must have shape {tuple(shape)}, got {tuple(t.shape)}')
    if t.dtype != like.dtype:
        raise TypeError(f'{op}: mixed dtypes {t.dtype} ({name}) and {like.dtype}')
    if t.device != like.device:
        raise RuntimeError(f'{op}: {name} on {t.device}, inputs on {like.device}; move them to '
                           'one device')


def _qk_shape(q, kernel_size):
    return (q.shape[0], q.shape[1], q.shape[2], kernel_size * kernel_size)


# -- fake kernels (outputs are contiguous, as the compiled kernels return them) ------------

@torch.library.register_fake('mmtransnext::sliding_qk')
def _sliding_qk_fake(q, k, rpb, height, width, kernel_size):
    check_qk('sliding_qk', q, k, height, width, kernel_size)
    _check_like('sliding_qk', 'rpb', rpb, (q.shape[1], kernel_size * kernel_size), q)
    return q.new_empty(_qk_shape(q, kernel_size))


@torch.library.register_fake('mmtransnext::sliding_qk_backward')
def _sliding_qk_backward_fake(grad_attn, q, k, height, width, kernel_size):
    check_qk('sliding_qk_backward', q, k, height, width, kernel_size)
    _check_like('sliding_qk_backward', 'grad_attn', grad_attn, _qk_shape(q, kernel_size), q)
    return (q.new_empty(q.shape), k.new_empty(k.shape),
            q.new_empty((q.shape[1], kernel_size * kernel_size)))


@torch.library.register_fake('mmtransnext::sliding_av')
def _sliding_av_fake(attn, v, height, width, kernel_size):
    check_av('sliding_av', attn, v, height, width, kernel_size)
    return v.new_empty(v.shape)


@torch.library.register_fake('mmtransnext::sliding_av_backward')
def _sliding_av_backward_fake(grad_out, attn, v, height, width, kernel_size):
    check_av('sliding_av_backward', attn, v, height, width, kernel_size)
    _check_like('sliding_av_backward', 'grad_out', grad_out, v.shape, v)
    return attn.new_empty(attn.shape), v.new_empty(v.shape)


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


torch.library.register_autograd('mmtransnext::sliding_qk', _qk_backward,
                                setup_context=_qk_setup_context)
torch.library.register_autograd('mmtransnext::sliding_av', _av_backward,
                                setup_context=_av_setup_context)
