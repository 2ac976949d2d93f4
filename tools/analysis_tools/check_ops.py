"""Self-check of the compiled ops on this machine: every kernel against the torch path.

For each kernel of ``mmtransnext._ext`` on the chosen device (sliding_qk, sliding_av, and
on CPU the fused aggregated_attention, which has no CUDA kernel) it checks, in fp32, fp16 and
bf16 at border-heavy and odd shapes (windows wider than the map, odd grids, pooled grids that
do not divide the map):
  * the forward against the torch path in fp32 on the same rounded inputs;
  * every input gradient against the torch path's;
  * determinism: two backward passes give bitwise equal gradients;
then prints a timing table (ms, median of --repeat runs) of the compiled kernel against the
torch path at a TransNeXt-T stage-1 shape. Exit status 1 on any mismatch.

Usage: python tools/analysis_tools/check_ops.py --device cuda [--quick] [--kernel NAME]
           [--out table.md]
"""
from mmtransnext.utils.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import statistics
import sys
import time

import torch

from mmtransnext.ops import ext_loader
from mmtransnext.ops.attention import AttentionInputs, aggregated_attention_torch
from mmtransnext.ops.sliding_window_torch import sliding_av_torch, sliding_qk_torch
from mmtransnext.ops.testing import attention_inputs, window_inputs
from mmtransnext.ops.window_geometry import outside_mask

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
# per-element tolerance (abs and rel); gradients that sum over tokens get 10x
TOLS = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 3e-2}
# (B, heads, H, W, head_dim, window): odd grids, borders everywhere, window wider than the map
SHAPES = [(2, 3, 7, 11, 24, 3), (1, 2, 9, 5, 24, 5), (2, 2, 2, 3, 8, 5), (1, 4, 33, 17, 32, 7)]
SUMMED = {'rpb', 'pos_bias', 'key_pool', 'value_pool', 'learnable_tokens', 'learnable_bias'}


def pool_grid(H, W, timing=False):
    """Checks: a pooled grid that does not divide the map; timing: the model's (sr 8)."""
    if timing:
        return H // 8, W // 8
    return max(1, H // 3), max(1, (W + 1) // 2)


# -- one kernel = (make inputs, compiled call, torch call); outputs compared where finite ------

def _qk(shape, dtype, device, timing=False):
    B, heads, H, W, d, ks = shape
    x = window_inputs(B, heads, H, W, d, ks, dtype, device, requires_grad=True)
    args = (x['q'], x['k'], x['rpb'])

    def ext(*t):
        return torch.ops.mmtransnext.sliding_qk(*t, H, W, ks)

    def ref(*t):
        return sliding_qk_torch(*t, H, W, ks)
    return ('q', 'k', 'rpb'), args, ext, ref


def _av(shape, dtype, device, timing=False):
    B, heads, H, W, d, ks = shape
    x = window_inputs(B, heads, H, W, d, ks, dtype, device, requires_grad=True)

    def ext(*t):
        return torch.ops.mmtransnext.sliding_av(*t, H, W, ks)

    def ref(*t):
        return sliding_av_torch(*t, H, W, ks)
    return ('attn', 'v'), (x['w'], x['v']), ext, ref


def _fused(shape, dtype, device, timing=False):
    B, heads, H, W, d, ks = shape
    pool_hw = pool_grid(H, W, timing)
    a = attention_inputs(B, heads, H, W, d, ks, pool_hw, dtype, device, requires_grad=True)

    def ext(*t):
        return torch.ops.mmtransnext.aggregated_attention(*a.with_floats(*t), H, W, ks,
                                                          *pool_hw)[0]

    def ref(*t):
        return aggregated_attention_torch(a.with_floats(*t), H, W, ks)
    return AttentionInputs._fields[:len(a.floats())], a.floats(), ext, ref


KERNELS = {'sliding_qk': _qk, 'sliding_av': _av, 'aggregated_attention': _fused}
CUDA_KERNELS = ('sliding_qk', 'sliding_av')  # no fused CUDA kernel


def _max_err(got, want, tol):
    """Largest |got - want| / (tol * (1 + |want|)) over finite entries; inf if the non-finite
    pattern differs. <= 1 passes."""
    got, want = got.detach().float().cpu(), want.detach().float().cpu()
    if not torch.equal(torch.isfinite(got), torch.isfinite(want)) or \
            not torch.equal(got[~torch.isfinite(got)], want[~torch.isfinite(want)]):
        return float('inf')
    fin = torch.isfinite(want)
    if not fin.any():
        return 0.
    return float(((got[fin] - want[fin]).abs() / (tol * (1 + want[fin].abs()))).max())


def check_case(kernel, shape, dtype, device):
    """[(what, error ratio)] of one kernel / shape / dtype; ratio > 1 is a mismatch."""
    names, args, ext, ref = KERNELS[kernel](shape, dtype, device)
    tol = TOLS[dtype]
    ref_args = tuple(t.detach().float().requires_grad_() for t in args)
    out, want = ext(*args), ref(*ref_args)
    results = [('forward', _max_err(out, want, tol))]
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out)
    got = torch.autograd.grad(out, args, grad)
    exp = torch.autograd.grad(want, ref_args, grad.float())
    for name, g, e in zip(names, got, exp):
        results.append((f'grad {name}', _max_err(g, e, tol * (10 if name in SUMMED else 1))))
    again = torch.autograd.grad(ext(*args), args, grad)
    same = all(torch.equal(a, b) for a, b in zip(got, again))
    results.append(('deterministic', 0. if same else float('inf')))
    return results


def _time(fn, repeat, device):
    times = []
    for _ in range(repeat + 1):  # the first run warms up
        if device == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:]) * 1e3


def timing_rows(kernels, device, quick, repeat):
    """TransNeXt-T stage 1 at 224 x 224 (56 x 56 tokens, 3 heads, head_dim 24, window 3,
    pooled 7 x 7); --quick: 28 x 28 tokens."""
    side = 28 if quick else 56
    shape = (1, 3, side, side, 24, 3)
    rows = []
    for kernel in kernels:
        names, args, ext, ref = KERNELS[kernel](shape, torch.float32, device, timing=True)
        row = [kernel]
        for fn in (ext, ref):
            row.append(_time(lambda: fn(*args), repeat, device))
            row.append(_time(lambda: fn(*args).sum().backward(), repeat, device))
        rows.append(row)
    return shape, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--quick', action='store_true',
                        help='two shapes and a small timing case (the test suite runs this)')
    parser.add_argument('--kernel', action='append', choices=tuple(KERNELS),
                        help='check only this kernel (repeatable; default: all on the device)')
    parser.add_argument('--repeat', type=int, default=10, help='timed runs per entry')
    parser.add_argument('--out', help='also write the report (markdown) to this file')
    args = parser.parse_args(argv)

    if ext_loader.load() is None:
        print(f'mmtransnext._ext does not import ({ext_loader.load_error()}): nothing to check.')
        return 1
    device = args.device
    if device == 'cuda' and not (torch.cuda.is_available() and ext_loader.has_cuda()):
        print('--device cuda: ' + ('no CUDA device' if not torch.cuda.is_available() else
                                   'mmtransnext._ext has no CUDA kernels (FORCE_CUDA=1 build)'))
        return 1
    kernels = CUDA_KERNELS if device == 'cuda' else tuple(KERNELS)
    if args.kernel:
        missing = [k for k in args.kernel if k not in kernels]
        if missing:
            print(f'no {device} kernel for {missing} (there: {kernels})')
            return 1
        kernels = tuple(args.kernel)
    shapes = SHAPES[:2] if args.quick else SHAPES
    name = torch.cuda.get_device_name() if device == 'cuda' else 'CPU'
    lines = [f'# mmtransnext ops self-check on {name} (torch {torch.__version__}, '
             f'{torch.get_num_threads()} threads)', '',
             '| kernel | dtype | shape (B, heads, H, W, d, k) | worst check | error / tol | ok |',
             '|---|---|---|---|---|---|']
    failures = 0
    for kernel in kernels:
        for dname, dtype in DTYPES.items():
            for shape in shapes:
                results = check_case(kernel, shape, dtype, device)
                what, err = max(results, key=lambda r: r[1])
                ok = err <= 1
                failures += not ok
                lines.append(f'| {kernel} | {dname} | {shape} | {what} | {err:.3g} | '
                             f'{"yes" if ok else "**MISMATCH**"} |')
    shape, rows = timing_rows(kernels, device, args.quick, max(1, args.repeat))
    lines += ['', f'Timing, fp32, ms (median of {args.repeat}), shape {shape}:', '',
              '| kernel | compiled fwd | compiled fwd+bwd | torch fwd | torch fwd+bwd |',
              '|---|---|---|---|---|']
    lines += [f'| {r[0]} | ' + ' | '.join(f'{t:.2f}' for t in r[1:]) + ' |' for r in rows]
    lines += ['', f'{failures} mismatch(es).' if failures else 'All checks passed.']
    report = '\n'.join(lines)
    print(report)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(report + '\n')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
