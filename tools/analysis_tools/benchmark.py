"""Benchmark the TransNeXt backbone per sliding-window implementation.

Implementations:
  ext     the compiled kernels (mmtransnext._ext; MMTRANSNEXT_OPS=ext)
  torch   the pure-PyTorch shifted-slice path (MMTRANSNEXT_OPS=torch)
  unfold  the authors' approach, defined ONLY here as a baseline: F.unfold copies keys and
          values k*k-fold ([B, heads, N, d, k*k]), then a batched matmul per query. It is
          swapped in by patching the names imported in
          mmtransnext/models/layers/aggregated_attention.py.

Every (implementation, case) runs in a fresh subprocess so that its peak memory is its own:
on the CPU the peak RSS (getrusage ru_maxrss) is reported both absolute and as the rise over
the RSS after the model was built and the input made; on CUDA, torch.cuda.max_memory_allocated
over the allocation after the build. Times are medians over --repeats runs after --warmup.

Example (the numbers in benchmarks/cpu_2threads.md):
    python tools/analysis_tools/benchmark.py --device cpu --threads 2 --arch tiny --batch 1 \
        --case forward:512:interpolate --case forward:1024:interpolate \
        --case forward:512:linear --case forward:1024:linear --case train:512:interpolate \
        --out benchmarks/cpu_2threads
Writes <out>.json and <out>.md.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMPLS = ('ext', 'torch', 'unfold')
MODES = ('forward', 'train')
DEFAULT_CASES = ('forward:512:interpolate', 'forward:1024:interpolate', 'forward:512:linear',
                 'forward:1024:linear', 'train:512:interpolate')


# -- the unfold baseline (benchmark only) ----------------------------------------------------

def unfold_qk(q, k, rpb, height, width, kernel_size):
    import torch
    import torch.nn.functional as F

    from mmtransnext.models.layers.window_geometry import outside_mask
    B, h, N, d = q.shape
    nk = kernel_size * kernel_size
    k_img = k.transpose(2, 3).reshape(B, h * d, height, width)
    k_loc = F.unfold(k_img, kernel_size, padding=kernel_size // 2)
    k_loc = k_loc.reshape(B, h, d, nk, N).permute(0, 1, 4, 2, 3)  # [B, h, N, d, k*k]
    attn = (q.unsqueeze(-2) @ k_loc).squeeze(-2) + rpb.view(1, h, 1, nk).to(q.dtype)
    return attn.masked_fill(outside_mask(height, width, kernel_size, q.device), float('-inf'))


def unfold_av(attn, v, height, width, kernel_size):
    import torch.nn.functional as F
    B, h, N, d = v.shape
    nk = kernel_size * kernel_size
    v_img = v.transpose(2, 3).reshape(B, h * d, height, width)
    v_loc = F.unfold(v_img, kernel_size, padding=kernel_size // 2)
    v_loc = v_loc.reshape(B, h, d, nk, N).permute(0, 1, 4, 3, 2)  # [B, h, N, k*k, d]
    return (attn.unsqueeze(-2) @ v_loc).squeeze(-2)


def install_impl(impl):
    if impl == 'unfold':
        os.environ['MMTRANSNEXT_OPS'] = 'torch'  # nothing else may reach the ext
        from mmtransnext.models.layers import aggregated_attention
        aggregated_attention.sliding_window_qk = unfold_qk
        aggregated_attention.sliding_window_av = unfold_av
    else:
        os.environ['MMTRANSNEXT_OPS'] = impl
        from mmtransnext.ops import ext_loader
        if impl == 'ext' and ext_loader.load() is None:
            raise SystemExit(f'mmtransnext._ext is not built: {ext_loader.load_error()}')


# -- one configuration, in its own process ---------------------------------------------------

def _rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_worker(args):
    import torch
    torch.set_num_threads(args.threads)
    install_impl(args.impl)
    from mmtransnext.models import TransNeXt

    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    torch.manual_seed(0)
    model = TransNeXt(arch=args.arch, img_size=args.res, pos_bias=args.pos_bias).to(device)
    train = args.mode == 'train'
    model.train(train)
    x = torch.randn(args.batch, 3, args.res, args.res, device=device)

    def step():
        if train:
            outs = model(x)
            sum(o.float().mean() for o in outs).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                outs = model(x)
            assert len(outs) == 4
        if cuda:
            torch.cuda.synchronize(device)

    if cuda:
        torch.cuda.synchronize(device)
        base_alloc = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    base_rss = _rss_mb()
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    result = dict(impl=args.impl, mode=args.mode, res=args.res, pos_bias=args.pos_bias,
                  batch=args.batch, arch=args.arch, device=args.device, threads=args.threads,
                  median_ms=statistics.median(times) * 1e3, min_ms=min(times) * 1e3,
                  times_ms=[t * 1e3 for t in times])
    if cuda:
        result['peak_mem_mb'] = (torch.cuda.max_memory_allocated(device) - base_alloc) / 2**20
    else:
        peak = _maxrss_mb()
        result['peak_rss_mb'] = peak
        result['base_rss_mb'] = base_rss
        result['peak_mem_mb'] = peak - base_rss
    print('RESULT ' + json.dumps(result), flush=True)


# -- driver ------------------------------------------------------------------------------------

def machine(device, threads):
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    info = dict(cpu=cpu, logical_cpus=os.cpu_count(), threads=threads,
                torch=torch.__version__, python=platform.python_version(),
                platform=platform.platform())
    if device.startswith('cuda'):
        info['gpu'] = torch.cuda.get_device_name(torch.device(device))
        info['cuda'] = torch.version.cuda
    try:
        info['commit'] = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                                        capture_output=True, text=True,
                                        cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        pass
    return info


def markdown(results, info, args):
    mem = 'peak RSS rise (MB)' if args.device == 'cpu' else 'peak allocated (MB)'
    lines = [f'# TransNeXt-{args.arch.capitalize()} backbone benchmark ({args.device})', '',
             f'- CPU: {info["cpu"]} ({info["logical_cpus"]} logical CPUs), '
             f'{info["threads"]} torch threads' + (
                 f'; GPU: {info["gpu"]} (CUDA {info["cuda"]})' if 'gpu' in info else ''),
             f'- torch {info["torch"]}, Python {info["python"]}, {info["platform"]}'
             + (f', commit {info["commit"]}' if info.get('commit') else ''),
             f'- batch {args.batch}; median of {args.repeats} runs after {args.warmup} warm-up; '
             'each row a fresh process',
             '- forward = `model.eval()` under `torch.no_grad()`; train = forward + backward',
             '- memory: ' + ('peak RSS (getrusage ru_maxrss) minus the RSS after model build '
                             '(absolute peak RSS in brackets)' if args.device == 'cpu' else
                             'torch.cuda.max_memory_allocated minus the allocation after build'),
             '- unfold = the authors\' approach (F.unfold k*k-fold copies of keys and values, '
             'batched matmul), defined only in the benchmark; speed-up and memory ratio are '
             'against it', '',
             f'| mode | input | pos_bias | impl | median ms | min ms | {mem} | '
             'speed-up vs unfold | memory vs unfold |',
             '|---|---|---|---|---:|---:|---:|---:|---:|']
    by_case = {}
    for r in results:
        by_case.setdefault((r['mode'], r['res'], r['pos_bias']), {})[r['impl']] = r
    for (mode, res, pos_bias), rows in by_case.items():
        ref = rows.get('unfold')
        for impl in IMPLS:
            r = rows.get(impl)
            if r is None:
                continue
            m = f'{r["peak_mem_mb"]:.0f}'
            if 'peak_rss_mb' in r:
                m += f' ({r["peak_rss_mb"]:.0f})'
            speed = f'{ref["median_ms"] / r["median_ms"]:.2f}x' if ref else '-'
            ratio = (f'{r["peak_mem_mb"] / ref["peak_mem_mb"]:.2f}'
                     if ref and ref['peak_mem_mb'] > 0 else '-')
            lines.append(f'| {mode} | {res}x{res} | {pos_bias} | {impl} | '
                         f'{r["median_ms"]:.0f} | {r["min_ms"]:.0f} | {m} | {speed} | {ratio} |')
    return '\n'.join(lines) + '\n'


def parse_case(text):
    mode, res, pos_bias = text.split(':')
    if mode not in MODES:
        raise argparse.ArgumentTypeError(f'mode must be one of {MODES}, got {mode!r}')
    return mode, int(res), pos_bias


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='tiny')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--impls', nargs='+', default=list(IMPLS), choices=IMPLS)
    p.add_argument('--case', action='append', type=parse_case, metavar='MODE:RES:POS_BIAS',
                   help=f'mode forward|train, square input side, pos_bias '
                        f'interpolate|extrapolate|linear (default: {", ".join(DEFAULT_CASES)})')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--out', default=None, help='write <out>.json and <out>.md')
    # worker-only arguments
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--impl', help=argparse.SUPPRESS)
    p.add_argument('--mode', help=argparse.SUPPRESS)
    p.add_argument('--res', type=int, help=argparse.SUPPRESS)
    p.add_argument('--pos-bias', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return run_worker(args)

    cases = args.case or [parse_case(c) for c in DEFAULT_CASES]
    results = []
    for mode, res, pos_bias in cases:
        for impl in args.impls:
            cmd = [sys.executable, __file__, '--worker', '--impl', impl, '--mode', mode,
                   '--res', str(res), '--pos-bias', pos_bias, '--arch', args.arch,
                   '--device', args.device, '--threads', str(args.threads),
                   '--batch', str(args.batch), '--repeats', str(args.repeats),
                   '--warmup', str(args.warmup)]
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')),
                        None)
            if proc.returncode or line is None:
                print(proc.stdout + proc.stderr, file=sys.stderr)
                raise SystemExit(f'{impl} {mode} {res} {pos_bias}: worker failed')
            r = json.loads(line[len('RESULT '):])
            results.append(r)
            print(f'{mode:8s} {res:5d} {pos_bias:12s} {impl:7s} median {r["median_ms"]:9.1f} ms'
                  f'  peak mem {r["peak_mem_mb"]:8.1f} MB', flush=True)
    info = machine(args.device, args.threads)
    md = markdown(results, info, args)
    print(md)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix('.json').write_text(json.dumps(dict(machine=info, results=results),
                                                       indent=2) + '\n')
        out.with_suffix('.md').write_text(md)


if __name__ == '__main__':
    main()
