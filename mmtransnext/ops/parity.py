"""One kernel against the torch path: values, every input gradient, determinism.

The one copy of the comparison that ``tools/analysis_tools/check_ops.py`` prints for every
kernel and shape, and that the run-time self-check (:mod:`.self_check`) runs once per
implementation, device and dtype. A kernel is (input names, inputs, compiled call, torch
call); the torch call runs on fp32 copies of the same (rounded) inputs, under
:func:`.torch_reference.torch_reference`, so no compiled code takes part in the reference.
"""
import torch

from .attention import AttentionInputs, aggregated_attention_torch
from .checks import acc_dtype
from .sliding_window_torch import sliding_av_torch, sliding_qk_torch
from .testing import attention_inputs, window_inputs
from .torch_reference import torch_reference

# per-element tolerance (abs and rel) per dtype; gradients that sum over tokens get 10x
TOLS = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 3e-2}
SUMMED = {'rpb', 'pos_table', 'key_pool', 'value_pool', 'learnable_tokens', 'learnable_bias'}
# kernels whose backward adds with atomics: not bitwise deterministic on a GPU
NOT_DETERMINISTIC = {'aggregated_attention_triton'}


def pool_grid(H, W, timing=False):
    """Checks: a pooled grid that does not divide the map; timing: the model's (sr 8)."""
    if timing:
        return H // 8, W // 8
    return max(1, H // 3), max(1, (W + 1) // 2)


def _window_op(op, torch_op, names, keys):
    """A window op: ``torch.ops.mmtransnext.<op>`` against ``torch_op`` on the window_inputs
    ``keys`` (named ``names``)."""
    def make(shape, dtype, device, timing=False):
        B, heads, H, W, d, ks = shape
        x = window_inputs(B, heads, H, W, d, ks, dtype, device, requires_grad=True)

        def ext(*t):
            return getattr(torch.ops.mmtransnext, op)(*t, H, W, ks)

        def ref(*t):
            return torch_op(*t, H, W, ks)
        return names, tuple(x[k] for k in keys), ext, ref
    return make


def _fused_with(call):
    def make(shape, dtype, device, timing=False):
        B, heads, H, W, d, ks = shape
        pool_hw = pool_grid(H, W, timing)
        a = attention_inputs(B, heads, H, W, d, ks, pool_hw, dtype, device, requires_grad=True)

        def ext(*t):
            return call(a.with_floats(*t), H, W, ks, pool_hw)

        def ref(*t):
            return aggregated_attention_torch(a.with_floats(*t), H, W, ks)
        return AttentionInputs._fields[:len(a.floats())], a.floats(), ext, ref
    return make


def _fused_ext(a, H, W, ks, pool_hw):
    return torch.ops.mmtransnext.aggregated_attention(*a, H, W, ks, *pool_hw)[0]


def _fused_triton(a, H, W, ks, pool_hw):
    from .aggregated_attention_triton import aggregated_attention_triton
    return aggregated_attention_triton(tuple(a), H, W, ks, *pool_hw)


KERNELS = {'sliding_qk': _window_op('sliding_qk', sliding_qk_torch, ('q', 'k', 'rpb'),
                                    ('q', 'k', 'rpb')),
           'sliding_av': _window_op('sliding_av', sliding_av_torch, ('attn', 'v'), ('w', 'v')),
           'aggregated_attention': _fused_with(_fused_ext),
           'aggregated_attention_triton': _fused_with(_fused_triton)}


def error_ratio(got, want, tol):
    """Largest |got - want| / (tol * (1 + |want|)) over finite entries; inf if the non-finite
    pattern differs. <= 1 passes."""
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    if not torch.equal(torch.isfinite(got), torch.isfinite(want)) or \
            not torch.equal(got[~torch.isfinite(got)], want[~torch.isfinite(want)]):
        return float('inf')
    fin = torch.isfinite(want)
    if not fin.any():
        return 0.
    return float(((got[fin] - want[fin]).abs() / (tol * (1 + want[fin].abs()))).max())


def check_case(kernel, shape, dtype, device, deterministic=True):
    """[(what, error ratio)] of one kernel / shape / dtype; ratio > 1 is a mismatch. With
    ``deterministic`` (and a kernel that promises it) two backward passes must give equal
    bits."""
    names, args, ext, ref = KERNELS[kernel](shape, dtype, device)
    tol = TOLS[dtype]
    ref_args = tuple(t.detach().to(acc_dtype(t.dtype)).requires_grad_() for t in args)
    out = ext(*args)
    with torch_reference():
        want = ref(*ref_args)
    results = [('forward', error_ratio(out, want, tol))]
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out)
    got = torch.autograd.grad(out, args, grad)
    exp = torch.autograd.grad(want, ref_args, grad.to(want.dtype))
    for name, g, e in zip(names, got, exp):
        results.append((f'grad {name}', error_ratio(g, e, tol * (10 if name in SUMMED else 1))))
    if deterministic and kernel not in NOT_DETERMINISTIC:
        again = torch.autograd.grad(ext(*args), args, grad)
        same = all(torch.equal(a, b) for a, b in zip(got, again))
        results.append(('deterministic', 0. if same else float('inf')))
    return results
