"""Self-check of the compiled ops on this machine: every kernel against the torch path.

For each kernel on the chosen device (sliding_qk, sliding_av of ``mmtransnext._ext``; on CPU
its fused aggregated_attention, which has no CUDA kernel; aggregated_attention_triton, the
Triton kernels, where triton >= 3.0 is installed: on CUDA natively, on CPU in Triton's
interpreter, in a subprocess with TRITON_INTERPRET=1) it checks, in fp32, fp16 and bf16 at
border-heavy and odd shapes (windows wider than the map, odd grids, pooled grids that do not
divide the map):
  * the forward against the torch path in fp32 on the same rounded inputs;
  * every input gradient against the torch path's;
  * determinism: two backward passes give bitwise equal gradients (not for the Triton
    kernels, whose backward adds with atomics);
then prints a timing table (ms, median of --repeat runs) of the compiled kernel against the
torch path at a TransNeXt-T stage-1 shape (not for the interpreter: it times Python). A kernel
that is not offered here is listed with the reason. Exit status 1 on any mismatch.

Usage: python tools/analysis_tools/check_ops.py --device cuda [--quick] [--kernel NAME]
           [--out table.md]
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

from mmtransnext.ops import ext_loader, triton_support
from mmtransnext.ops.parity import KERNELS, check_case

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
# (B, heads, H, W, head_dim, window): odd grids, borders everywhere, window wider than the map
SHAPES = [(2, 3, 7, 11, 24, 3), (1, 2, 9, 5, 24, 5), (2, 2, 2, 3, 8, 5), (1, 4, 33, 17, 32, 7)]
EXT_KERNELS = {'cpu': ('sliding_qk', 'sliding_av', 'aggregated_attention'),
               'cuda': ('sliding_qk', 'sliding_av')}  # no fused CUDA kernel in _ext
TRITON = 'aggregated_attention_triton'


def offered(device):
    """(kernels that can run on ``device`` here, {kernel: why not} of the others)."""
    kernels, missing = [], {}
    if ext_loader.load() is None:
        for k in EXT_KERNELS[device]:
            missing[k] = f'mmtransnext._ext does not import ({ext_loader.load_error()})'
    elif device == 'cuda' and not ext_loader.has_cuda():
        for k in EXT_KERNELS[device]:
            missing[k] = 'mmtransnext._ext has no CUDA kernels (FORCE_CUDA=1 build)'
    else:
        kernels += EXT_KERNELS[device]
    reason = triton_support.unavailable_reason()
    if reason is None:
        kernels.append(TRITON)
    else:
        missing[TRITON] = reason
    return kernels, missing


def _interpreter_rows(argv):
    """The Triton kernel's rows, from this script in a subprocess with TRITON_INTERPRET=1
    (triton reads it at import; this process may have imported triton already)."""
    cmd = [sys.executable, __file__, *argv, '--kernel', TRITON, '--no-timing']
    env = dict(os.environ, TRITON_INTERPRET='1')
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith(f'| {TRITON} |')]
    if not rows:
        rows = [f'| {TRITON} | - | - | interpreter run failed (exit {proc.returncode}): '
                + ' '.join((proc.stdout + proc.stderr).split()[-30:]) + ' | inf | '
                '**MISMATCH** |']
    return rows


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
    parser.add_argument('--no-timing', action='store_true', help='skip the timing table')
    args = parser.parse_args(argv)

    device = args.device
    if device == 'cuda' and not torch.cuda.is_available():
        print('--device cuda: no CUDA device')
        return 1
    kernels, missing = offered(device)
    if args.kernel:
        absent = [k for k in args.kernel if k not in kernels]
        if absent:
            print(f'no {device} kernel for {absent} here: ' + '; '.join(
                f'{k}: {missing.get(k, "not on this device")}' for k in absent))
            return 1
        kernels = list(args.kernel)
    if not kernels:
        print(f'no kernel to check on {device}: ' + '; '.join(f'{k}: {why}'
                                                           for k, why in missing.items()))
        return 1
    shapes = SHAPES[:2] if args.quick else SHAPES
    # on CPU the Triton kernel runs in the interpreter, in a subprocess started with it on
    interpret = (device == 'cpu' and TRITON in kernels
                 and not (triton_support.interpreting() and args.kernel == [TRITON]))
    name = torch.cuda.get_device_name() if device == 'cuda' else 'CPU'
    lines = [f'# mmtransnext ops self-check on {name} (torch {torch.__version__}, '
             f'{torch.get_num_threads()} threads)', '',
             '| kernel | dtype | shape (B, heads, H, W, d, k) | worst check | error / tol | ok |',
             '|---|---|---|---|---|---|']
    for kernel in kernels:
        if kernel == TRITON and interpret:
            lines += _interpreter_rows(['--device', 'cpu'] + (['--quick'] if args.quick else []))
            continue
        for dname, dtype in DTYPES.items():
            for shape in shapes:
                results = check_case(kernel, shape, dtype, device)
                what, err = max(results, key=lambda r: r[1])
                lines.append(f'| {kernel} | {dname} | {shape} | {what} | {err:.3g} | '
                             f'{"yes" if err <= 1 else "**MISMATCH**"} |')
    failures = sum('**MISMATCH**' in ln for ln in lines)
    lines += [f'| {k} | - | - | not offered here: {why} | - | - |' for k, why in missing.items()
              if not args.kernel]
    timed = [k for k in kernels if not (k == TRITON and device == 'cpu')]
    if timed and not args.no_timing:
        shape, rows = timing_rows(timed, device, args.quick, max(1, args.repeat))
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
