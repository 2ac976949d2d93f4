"""Benchmark TransNeXt's backbone against the authors' release, Swin-T and ConvNeXt-T,
per implementation and precision, in one run.

Implementations of ours (one built model, switched between rounds):
  fused   the default on CPU: the fused aggregated-attention op and the compiled window ops
          (MMTRANSNEXT_OPS=ext, MMTRANSNEXT_FUSED=1)
  ext     the compiled window ops, the attention core in PyTorch (MMTRANSNEXT_FUSED=0): the
          default on CUDA
  triton  the Triton kernels of the fused attention (MMTRANSNEXT_FUSED=triton; CUDA only)
  torch   the pure-PyTorch shifted-slice path (MMTRANSNEXT_OPS=torch)
  unfold  the authors' window attention (F.unfold k*k-fold copies of keys and values, then a
          batched matmul per query) inside our model, defined only in the benchmark
Beside them: 'authors', the authors' release built from --authors-repo (a checkout of
github:DaiShiResearch/TransNeXt, imported from there at run time, never copied here: their
mmseg backbone segmentation/upernet/transnext_native.py, PyTorch-native attention; ours
'interpolate' / 'extrapolate' = their is_extrapolation False / True, img_size and
pretrain_size 224 alike), in every forward and training case that has a counterpart; and
'swin' / 'convnext' (mmdet's Swin-T, mmpretrain's ConvNeXt-T) in the single-scale forward
cases. Precisions: fp32, bf16-autocast (forward under torch.autocast; training step through
BF16OptimWrapper, the configs' bf16 wrapper on a CPU), fp16-autocast (CUDA); they apply to
our implementations, the others run fp32.

Cases are MODE:RES:POS_BIAS[:IMG_SIZE]. Modes forward / train time the whole backbone
(forward under no_grad; forward + backward with the gradients kept between iterations) on
a RES x RES input, built with img_size=IMG_SIZE (default RES; 'interpolate' builds the bias
on the IMG_SIZE grid and resizes it, e.g. forward:1024:interpolate:512 is one scale of a
512-trained model's multi-scale test). Modes ops-forward / ops-train time the window ops
alone (one sliding_qk + one sliding_av call) at the shape of each windowed stage.

Timing: per case (and stage) ONE subprocess builds each model and the input once and runs
all variants interleaved, round by round in rotating order, so that other load on the
machine hits them alike; reported are the median wall-clock time, the median process CPU
time, and ratios as medians of the per-round ratios.
Memory: a fresh subprocess per (variant, case), the same probe for every implementation:
parameters + buffers + the peak RSS rise (VmHWM restarted through /proc/self/clear_refs
after the build) over one forward, or over --train-memory-steps training steps (gradients
kept), with MALLOC_MMAP_THRESHOLD_ so that the RSS follows live tensors. On CUDA,
torch.cuda.max_memory_allocated over the allocation after the build (warm-up).
Matmul floor: a large fp32 matmul timed at the start and the end of the run gives GMAC/s;
each forward case counts its multiply-adds (mmengine's FlopAnalyzer plus our window ops);
"x floor" = median time / (MACs / GMAC/s), "ms per GMAC" sets the backbones side by side.

Example (the default cases on CPU: forward 512 interpolate and extrapolate, forward 1024
of a 512 model, the training step at 512, the window ops at 512):
    python tools/analysis_tools/benchmark.py --threads 2 --authors-repo ../TransNeXt \\
        --out benchmarks/cpu_2threads
Writes <out>.json and <out>.md. Without --authors-repo the report says the authors'
release was not run and prints no ratio.

On a GPU (issue 16): ``--device cuda`` runs torch, ext and triton (default) on TransNeXt-T's
forward at 512, at 1024 (interpolate from 512, and extrapolate) and the training step at 512
with batch 2 (default cases), each in fp32 and under fp16 autocast (``--precision``). Without
a CUDA device it says so and exits 0.
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from mmtransnext.analysis import authors
from mmtransnext.analysis.cases import (CPU_CASES, CPU_PRECISIONS, CUDA_CASES,
                                        CUDA_PRECISIONS, CUDA_TRAIN_BATCH, MODES, OPS_IMPLS,
                                        PRECISIONS, REFERENCES, default_cases, parse_case,
                                        variants, windowed_stages)
from mmtransnext.analysis.floor import MATMUL_N
from mmtransnext.analysis.implementations import CPU_DEFAULT, CUDA_DEFAULT, OURS
from mmtransnext.analysis.machine import machine
from mmtransnext.analysis.memory import MALLOC_MMAP_THRESHOLD
from mmtransnext.analysis.report import markdown

WORKER = [sys.executable, '-m', 'mmtransnext.analysis.worker']
MEMORY_KEYS = ('peak_rss_mb', 'base_rss_mb', 'peak_mem_mb', 'peak_counter', 'model_mb',
               'memory_mb', 'memory_steps')


def _run(cmd, env):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        raise SystemExit(f'worker failed: {" ".join(cmd)}')
    return [json.loads(ln[len('RESULT '):]) for ln in lines]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='tiny')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--impls', nargs='+', default=None, choices=OURS,
                   help=f'ours (default: {" ".join(CPU_DEFAULT)} on CPU, '
                        f'{" ".join(CUDA_DEFAULT)} on CUDA; {" ".join(OPS_IMPLS)} in the '
                        'ops-* cases)')
    p.add_argument('--precision', nargs='+', default=None, choices=PRECISIONS,
                   help=f'precisions of ours (default: {" ".join(CPU_PRECISIONS)} on CPU, '
                        f'{" ".join(CUDA_PRECISIONS)} on CUDA)')
    p.add_argument('--case', action='append', type=parse_case,
                   metavar='MODE:RES:POS_BIAS[:IMG_SIZE]',
                   help=f'mode {"|".join(MODES)}, square input side, pos_bias '
                        f'interpolate|extrapolate|linear (ignored by ops-*), img_size of the '
                        f'backbone (default: RES) (default: {" ".join(CPU_CASES)}; on CUDA '
                        f'{" ".join(CUDA_CASES)})')
    p.add_argument('--authors-repo', default=None, metavar='PATH',
                   help='checkout of github:DaiShiResearch/TransNeXt: time their backbone '
                        'side by side with ours')
    p.add_argument('--authors-commit', default=None,
                   help='the commit of --authors-repo for the report (default: from git, '
                        'where the checkout has a .git)')
    p.add_argument('--references', nargs='*', default=None, choices=REFERENCES,
                   help='other backbones timed in the single-scale forward cases '
                        f'(default: {" ".join(REFERENCES)} on CPU, none on CUDA)')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--train-memory-steps', type=int, default=3,
                   help='training steps (gradients kept) the memory peak is taken over')
    p.add_argument('--out', default=None, help='write <out>.json and <out>.md')
    p.add_argument('--matmul-n', type=int, default=MATMUL_N,
                   help='side of the fp32 matmul that sets the floor (default: %(default)s)')
    return p.parse_args(argv)


def _worker_cmd(args, case, stage, batch, vs):
    cmd = WORKER + ['--mode', case.mode, '--res', str(case.res), '--pos-bias', case.pos_bias,
                    '--img-size', str(case.img_size), '--arch', args.arch,
                    '--device', args.device, '--threads', str(args.threads),
                    '--batch', str(batch), '--repeats', str(args.repeats),
                    '--warmup', str(args.warmup)]
    if stage is not None:
        cmd += ['--stage', str(stage[0])]
    if args.authors_repo:
        cmd += ['--authors-repo', str(args.authors_repo)]
    return cmd + ['--variants', *(f'{i}:{p}' for i, p in vs)]


def _memory(args, case, stage, batch, row, env):
    """The row's variant alone in a fresh process: its memory keys."""
    steps = args.train_memory_steps if case.mode == 'train' else 1
    cmd = _worker_cmd(args, case, stage, batch, [(row['impl'], row['precision'])])
    mem, = _run(cmd + ['--memory-run', '--memory-steps', str(steps)],
                dict(env, MALLOC_MMAP_THRESHOLD_=str(MALLOC_MMAP_THRESHOLD)))
    return {k: mem[k] for k in MEMORY_KEYS if k in mem}


def main(argv=None):
    args = parse_args(argv)
    cuda = args.device.startswith('cuda')
    if cuda:
        import torch
        if not torch.cuda.is_available():
            print(f'--device {args.device}: no CUDA device on this machine (torch '
                  f'{torch.__version__}, CUDA build: {torch.version.cuda}); nothing to '
                  'benchmark. Run this on a machine with a GPU.')
            return 0
    args.precision = args.precision or list(CUDA_PRECISIONS if cuda else CPU_PRECISIONS)
    args.references = (() if cuda else REFERENCES) if args.references is None \
        else args.references
    authors_info = (authors.describe(args.authors_repo, args.authors_commit)
                    if args.authors_repo else None)
    # SIGTERM -> SystemExit, so that subprocess.run kills the running worker too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    cases = args.case or default_cases(cuda)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    matmul_cmd = WORKER + ['--mode', 'matmul', '--threads', str(args.threads),
                           '--matmul-n', str(args.matmul_n)]
    gmacs_runs = [] if cuda else [_run(matmul_cmd, env)[0]['gmacs']]
    results = []
    for case in cases:
        ops = case.mode.startswith('ops')
        batch = CUDA_TRAIN_BATCH if cuda and case.mode == 'train' and not args.case \
            else args.batch
        vs = variants(case, args.impls, args.precision, bool(args.authors_repo),
                      args.references, cuda)
        for stage in windowed_stages(args.arch, case.res) if ops else [None]:
            load_before = os.getloadavg()[0]
            rows = _run(_worker_cmd(args, case, stage, batch, vs), env)
            load = [load_before, os.getloadavg()[0]]  # 1-minute load average before, after
            for r in rows:
                r['loadavg_1min'] = load
                if not cuda:
                    r.update(_memory(args, case, stage, batch, r, env))
                if stage is not None:
                    r['pos_bias'] = '-'
                    r['shape'] = f'{stage[3]}x{stage[3]}, {stage[1]}x{stage[2]}'
                results.append(r)
                where = (f'{case.pos_bias}:{case.img_size}' if stage is None
                         else f'stage {stage[0] + 1}')
                if r.get('self_check_failures'):
                    print(f'WARNING: the run-time self-check failed for '
                          f'{r["self_check_failures"]}: those rows timed the fallback',
                          flush=True)
                print(f'{case.mode:11s} {case.res:5d} {where:16s} {r["precision"]:13s} '
                      f'{r["impl"]:8s} median {r["median_ms"]:9.1f} ms  CPU '
                      f'{r["median_cpu_ms"]:9.1f} ms  peak mem {r.get("peak_mem_mb", 0):8.1f} '
                      'MB', flush=True)
    info = machine(args.device, args.threads)
    if authors_info:
        info['authors'] = authors_info
    if gmacs_runs:
        gmacs_runs.append(_run(matmul_cmd, env)[0]['gmacs'])
        info.update(matmul_gmacs=max(gmacs_runs), matmul_gmacs_runs=gmacs_runs)
    loads = [x for r in results for x in r['loadavg_1min']]
    info['loadavg_1min_range'] = [min(loads), max(loads)]
    md = markdown(results, info, args)
    print(md)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix('.json').write_text(json.dumps(dict(machine=info, results=results),
                                                       indent=2) + '\n')
        out.with_suffix('.md').write_text(md)
    return 0


if __name__ == '__main__':
    sys.exit(main())
