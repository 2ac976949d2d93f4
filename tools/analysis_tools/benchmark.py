"""Benchmark the TransNeXt backbone per sliding-window implementation.

Implementations:
  fused   the default on CPU: the fused aggregated-attention op and the compiled window ops
          (MMTRANSNEXT_OPS=ext, MMTRANSNEXT_FUSED=1)
  ext     the compiled window ops, the attention core in PyTorch (MMTRANSNEXT_FUSED=0): the
          default on CUDA
  triton  the Triton kernels of the fused attention (MMTRANSNEXT_FUSED=triton; CUDA only)
  torch   the pure-PyTorch shifted-slice path (MMTRANSNEXT_OPS=torch)
  unfold  the authors' approach, defined ONLY here as a baseline: F.unfold copies keys and
          values k*k-fold ([B, heads, N, d, k*k]), then a batched matmul per query. It is
          swapped in by patching the names imported in mmtransnext/ops/attention.py (the
          torch path of the attention core).

Cases are MODE:RES:POS_BIAS[:IMG_SIZE]. Modes forward / train time the whole backbone
(forward under no_grad; forward + backward) on a RES x RES input, built with
img_size=IMG_SIZE (default RES; 'interpolate' builds the bias on the IMG_SIZE grid and
resizes it, e.g. forward:1024:interpolate:512 is one scale of a 512-trained model's
multi-scale test). Forward timings are taken after warm-up, so they include the inference
cache of the log-CPB table (the MLP ran once, in the warm-up; the gather and the resize run
every time). Modes ops-forward / ops-train time the window ops alone (one sliding_qk + one
sliding_av call, as one AggregatedAttention block makes them) at the shape of each windowed
stage for that input size: what the kernels themselves change.

Timing: per case (and stage) one subprocess builds the model and input once and runs the
implementations interleaved, round by round in rotating order, so that other load on the
machine hits them alike; reported are the median wall-clock time, the median process CPU
time and the median of the per-round wall-clock ratios to unfold.
Memory: a fresh one-step subprocess per (implementation, case). On the CPU, after the model
is built and the input made, 5 is written to /proc/self/clear_refs (the peak counter VmHWM
restarts from the current RSS); after the step, VmHWM minus that RSS is the step's peak
working set ("rise"). glibc malloc is told to return freed blocks to the OS
(MALLOC_MMAP_THRESHOLD_) so the RSS follows live tensors. "memory" = parameters + buffers
+ rise: the definition of the comparison with the authors' release in issue 9. (Where
clear_refs cannot be written, getrusage ru_maxrss minus the RSS after the build.) On CUDA,
torch.cuda.max_memory_allocated over the allocation after the build (timing process,
warm-up run of each implementation).
Matmul floor: one subprocess times a large fp32 matmul (n x n by n x n, same threads) and
reports its GMAC/s; each backbone forward case counts its multiply-adds (get_flops.py's
count_flops on the same model and input); "x floor" = median time / (MACs / GMAC/s).
Authors: the times and memory of the authors' release for the cases of issue 9 (AMD EPYC,
2 threads, TransNeXt-T, batch 1). Their code cannot be run here, so these are the figures
of that table, measured on another machine: the ratios compare machines as well as code.

Example (the default cases: those of issue 9, and the window ops at 512):
    python tools/analysis_tools/benchmark.py --threads 2 --out benchmarks/cpu_2threads
Writes <out>.json and <out>.md.

On a GPU (issue 16): ``--device cuda`` runs torch, ext and triton (default) on TransNeXt-T's
forward at 512, at 1024 (interpolate from 512, and extrapolate) and the training step at 512
with batch 2 (default cases), each in fp32 and under fp16 autocast (``--precision``), and
reports time and torch.cuda.max_memory_allocated per implementation. Without a CUDA device it
says so and exits 0.
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import gc
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMPLS = ('fused', 'ext', 'triton', 'torch', 'unfold')
CUDA_IMPLS = ('torch', 'ext', 'triton')
MODES = ('forward', 'train', 'ops-forward', 'ops-train')
DEFAULT_CASES = ('forward:512:interpolate', 'forward:512:extrapolate', 'forward:512:linear',
                 'forward:1024:interpolate:512', 'forward:1024:extrapolate',
                 'train:512:interpolate', 'ops-forward:512:-', 'ops-train:512:-')
# issue 16's GPU cases (the training step with batch 2: --batch applies to forward cases)
CUDA_CASES = ('forward:512:interpolate', 'forward:1024:interpolate:512',
              'forward:1024:extrapolate', 'train:512:interpolate')
CUDA_TRAIN_BATCH = 2
PRECISIONS = ('fp32', 'fp16-autocast')
# The authors' release in issue 9's table (AMD EPYC, 2 threads, TransNeXt-T, batch 1):
# (mode, input, pos_bias, img_size) -> (seconds, MB) as ranges (low, high).
AUTHORS = {
    ('forward', 512, 'interpolate', 512): ((2.35, 3.58), (602, 749)),
    ('forward', 512, 'extrapolate', 512): ((14.5, 14.5), (1260, 1260)),
    ('forward', 1024, 'interpolate', 512): ((26.0, 26.0), (4048, 4048)),
    ('forward', 1024, 'extrapolate', 1024): ((216, 216), (18600, 18600)),
    ('train', 512, 'interpolate', 512): ((8.85, 8.85), (4011, 4011)),
}
MATMUL_N = 2048


# -- the unfold baseline (benchmark only) ----------------------------------------------------

def unfold_qk(q, k, rpb, height, width, kernel_size):
    import torch
    import torch.nn.functional as F

    from mmtransnext.ops.window_geometry import outside_mask
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


_ORIGINAL = {}


def use_impl(impl):
    """Route AggregatedAttention's attention core and window ops to ``impl`` (switchable at
    any time)."""
    from mmtransnext.ops import attention as aa
    if not _ORIGINAL:
        _ORIGINAL.update(qk=aa.sliding_window_qk, av=aa.sliding_window_av)
    os.environ['MMTRANSNEXT_FUSED'] = {'fused': '1', 'triton': 'triton'}.get(impl, '0')
    if impl == 'triton':
        os.environ['MMTRANSNEXT_OPS'] = 'auto'
        aa.sliding_window_qk, aa.sliding_window_av = _ORIGINAL['qk'], _ORIGINAL['av']
        from mmtransnext.ops import triton_support
        reason = triton_support.unavailable_reason()
        if reason:
            raise SystemExit(f'--impls triton: {reason}')
        return
    if impl == 'unfold':
        os.environ['MMTRANSNEXT_OPS'] = 'torch'  # nothing else may reach the ext
        aa.sliding_window_qk, aa.sliding_window_av = unfold_qk, unfold_av
        return
    os.environ['MMTRANSNEXT_OPS'] = 'ext' if impl == 'fused' else impl
    aa.sliding_window_qk, aa.sliding_window_av = _ORIGINAL['qk'], _ORIGINAL['av']
    from mmtransnext.ops import ext_loader
    if impl in ('fused', 'ext') and ext_loader.load() is None:
        raise SystemExit(f'mmtransnext._ext is not built: {ext_loader.load_error()}')


# -- one configuration, in its own process ---------------------------------------------------

def _rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak_rss():
    """Restart the kernel's peak-RSS counter (VmHWM) from the current RSS; False if the
    kernel does not allow it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _vm_hwm_mb():
    with open('/proc/self/status') as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
    return kb / 1024


def _model_mb(model):
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def _forward_macs(model, x):
    """Multiply-adds of one forward (get_flops.py's count: window ops included)."""
    import torch
    sys.path.insert(0, str(Path(__file__).parent))
    from get_flops import count_flops
    with torch.no_grad():
        macs, _ = count_flops(model, (x,))
    macs = int(macs)
    for m in model.modules():  # the count's forward must not warm the timed ones
        if hasattr(m, 'clear_bias_cache'):
            m.clear_bias_cache()
    return macs


def matmul_gmacs(threads, n=MATMUL_N, repeats=7):
    """GMAC/s of an n x n by n x n fp32 matmul (median of ``repeats`` after one warm-up)."""
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return n ** 3 / statistics.median(times) / 1e9


def windowed_stages(arch, res):
    """(stage, heads, head_dim, tokens per side, window, blocks) of the stages with a window."""
    from mmtransnext.models.backbones.arch_settings import resolve_arch
    a = resolve_arch(arch)
    return [(i, a['num_heads'][i], a['embed_dims'][i] // a['num_heads'][i], res // 2 ** (i + 2),
             a['window_size'][i], a['depths'][i])
            for i in range(len(a['depths'])) if a['window_size'][i] is not None]


def _backbone_step(args, device):
    import torch

    from mmtransnext.models import TransNeXt
    model = TransNeXt(arch=args.arch, img_size=args.img_size or args.res,
                      pos_bias=args.pos_bias).to(device)
    train = args.mode == 'train'
    model.train(train)
    x = torch.randn(args.batch, 3, args.res, args.res, device=device)
    amp = torch.autocast(device.type, dtype=torch.float16,
                         enabled=args.precision == 'fp16-autocast')

    def step():
        if train:
            with amp:
                outs = model(x)
            sum(o.float().mean() for o in outs).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), amp:
                outs = model(x)
            assert len(outs) == 4
    step.model = model
    if args.mode == 'forward' and not args.memory_run:
        step.macs = _forward_macs(model, x)
    return step


def _ops_step(args, device):
    """One sliding_qk and one sliding_av call on the inputs of one block of a stage."""
    import torch

    from mmtransnext.ops import attention as aa
    _, heads, d, side, ks, _ = next(s for s in windowed_stages(args.arch, args.res)
                                    if s[0] == args.stage)
    train = args.mode == 'ops-train'
    B, N, nk = args.batch, side * side, ks * ks
    # [B, N, heads, d] memory seen as [B, heads, N, d], as the block passes them
    q, k, v = torch.randn(3, B, N, heads, d, device=device).transpose(2, 3).unbind(0)
    w = torch.randn(B, heads, N, nk, device=device)
    rpb = torch.randn(heads, nk, device=device)
    leaves = [t.requires_grad_(train) for t in (q, k, v, w, rpb)]
    if train:
        g_attn = torch.randn(B, heads, N, nk, device=device)
        g_out = torch.randn(B, heads, N, d, device=device)

    def step():  # looks the ops up per call: use_impl switches them
        qk, av = aa.sliding_window_qk, aa.sliding_window_av
        if train:
            attn = qk(q, k, rpb, side, side, ks)
            out = av(w, v, side, side, ks)
            torch.autograd.grad([attn, out], leaves, [g_attn, g_out])
        else:
            with torch.no_grad():
                qk(q, k, rpb, side, side, ks)
                av(w, v, side, side, ks)
    return step


def run_worker(args):
    """Memory run: one impl, one step. Timing run: all impls on one model and input,
    interleaved round by round (rotating order), so that other load on the machine hits
    them alike; the per-round ratios to unfold are reported too."""
    import torch
    if args.mode == 'matmul':
        print('RESULT ' + json.dumps(dict(matmul_n=args.matmul_n, gmacs=matmul_gmacs(
            args.threads, args.matmul_n))), flush=True)
        return
    torch.set_num_threads(args.threads)
    impls = args.impls
    use_impl(impls[0])
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    torch.manual_seed(0)
    inner = (_ops_step if args.mode.startswith('ops') else _backbone_step)(args, device)

    def step():
        inner()
        if cuda:
            torch.cuda.synchronize(device)

    common = dict(mode=args.mode, res=args.res, pos_bias=args.pos_bias, stage=args.stage,
                  img_size=args.img_size or args.res, batch=args.batch, arch=args.arch,
                  device=args.device, threads=args.threads, precision=args.precision)
    if hasattr(inner, 'macs'):
        common['macs'] = inner.macs
    if args.memory_run:  # CPU peak memory: one step; the driver sets MALLOC_MMAP_THRESHOLD_
        gc.collect()
        hwm = _reset_peak_rss()
        base_rss = _rss_mb()
        step()
        peak = _vm_hwm_mb() if hwm else _maxrss_mb()
        result = dict(common, impl=impls[0], peak_rss_mb=peak, base_rss_mb=base_rss,
                      peak_mem_mb=peak - base_rss, peak_counter='VmHWM' if hwm else 'ru_maxrss')
        if hasattr(inner, 'model'):
            result['model_mb'] = _model_mb(inner.model)
            result['memory_mb'] = result['model_mb'] + result['peak_mem_mb']
        print('RESULT ' + json.dumps(result), flush=True)
        return

    wall = {i: [] for i in impls}
    cpu = {i: [] for i in impls}
    peak_mem = {}
    for impl in impls:  # warm-up (and the CUDA peak memory, one impl at a time)
        use_impl(impl)
        if cuda:
            torch.cuda.synchronize(device)
            base_alloc = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(args.warmup):
            step()
        if cuda:
            peak_mem[impl] = (torch.cuda.max_memory_allocated(device) - base_alloc) / 2**20
    for r in range(args.repeats):
        for impl in impls[r % len(impls):] + impls[:r % len(impls)]:
            use_impl(impl)
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            wall[impl].append((time.perf_counter() - t0) * 1e3)
            cpu[impl].append((time.process_time() - c0) * 1e3)
    for impl in impls:
        result = dict(common, impl=impl, median_ms=statistics.median(wall[impl]),
                      min_ms=min(wall[impl]), times_ms=wall[impl],
                      # process CPU time (all threads) per run; with several threads it
                      # includes OpenMP barrier spinning
                      median_cpu_ms=statistics.median(cpu[impl]), cpu_times_ms=cpu[impl])
        if 'unfold' in impls:
            result['median_round_speedup_vs_unfold'] = statistics.median(
                u / t for u, t in zip(wall['unfold'], wall[impl]))
        if impl in peak_mem:
            result['peak_mem_mb'] = peak_mem[impl]
        from mmtransnext.ops import self_check
        if self_check.failures():  # a failed run-time check: the rows timed a fallback
            result['self_check_failures'] = [f'{i} {d} {t}' for i, d, t in
                                             self_check.failures()]
        print('RESULT ' + json.dumps(result), flush=True)


def _run(cmd, env):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        raise SystemExit(f'worker failed: {" ".join(cmd)}')
    return [json.loads(ln[len('RESULT '):]) for ln in lines]


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
        info['commit'] = subprocess.run(['git', 'describe', '--always', '--dirty', '--abbrev=7'],
                                        capture_output=True, text=True,
                                        cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        pass
    return info


def _case_key(r):
    return r['mode'], r['res'], r['pos_bias'], r.get('img_size', r['res'])


def _table(rows, mem_header, ops, gmacs=None):
    head = '| mode | input | ' + ('stage (tokens, heads x dim) |' if ops else
                                 'pos_bias (img_size) |')
    extra = '' if ops else ' memory MB | x floor |'
    lines = [head + f' impl | median ms | CPU ms | {mem_header} |{extra} speed-up vs unfold '
             '(wall / CPU) | memory vs unfold |',
             '|---|---|---|---|---:|---:|---:|' + ('' if ops else '---:|---:|') + '---:|---:|']
    by_case = {}
    for r in rows:
        by_case.setdefault(_case_key(r) + (r.get('stage'), r.get('precision', 'fp32')),
                           {})[r['impl']] = r
    for (mode, res, pos_bias, img_size, stage, precision), impls in by_case.items():
        if precision != 'fp32':
            mode = f'{mode} ({precision})'
        ref = impls.get('unfold')
        for impl in IMPLS:
            r = impls.get(impl)
            if r is None:
                continue
            m = f'{r["peak_mem_mb"]:.1f}' if ops else f'{r["peak_mem_mb"]:.0f}'
            if 'peak_rss_mb' in r:
                m += f' ({r["peak_rss_mb"]:.0f})'
            speed = (f'{r["median_round_speedup_vs_unfold"]:.2f}x / '
                     f'{ref["median_cpu_ms"] / r["median_cpu_ms"]:.2f}x' if ref else '-')
            ratio = (f'{r["peak_mem_mb"] / ref["peak_mem_mb"]:.2f}'
                     if ref and ref['peak_mem_mb'] > 0 else '-')
            where = (f'{stage + 1} ({r["shape"]})' if ops else f'{pos_bias} ({img_size})')
            if not ops:
                m += f' | {r["memory_mb"]:.0f}' if 'memory_mb' in r else ' | -'
                floor = r.get('macs') and gmacs and r['macs'] / gmacs / 1e6  # ms
                m += f' | {r["median_ms"] / floor:.2f}' if floor else ' | -'
            lines.append(f'| {mode} | {res}x{res} | {where} | {impl} | {r["median_ms"]:.1f} | '
                         f'{r["median_cpu_ms"]:.1f} | {m} | {speed} | {ratio} |')
    return lines


def _authors_table(rows):
    """Ours (the first measured of IMPLS: the default path, fused, first) against the
    authors' figures."""
    lines = ['| case | authors s | ours s | time ratio | authors MB | ours MB | memory ratio |',
             '|---|---:|---:|---:|---:|---:|---:|']
    ours = {}
    for r in rows:
        ours.setdefault(_case_key(r), {})[r['impl']] = r
    for key, ((t_lo, t_hi), (m_lo, m_hi)) in AUTHORS.items():
        impls = ours.get(key)
        if not impls:
            continue
        r = next(impls[i] for i in IMPLS if i in impls)
        t = r['median_ms'] / 1e3
        mem = r.get('memory_mb')

        def span(lo, hi, fmt):
            return fmt.format(lo) if lo == hi else (fmt + '-' + fmt).format(lo, hi)

        mode, res, pos_bias, img_size = key
        memory = (f'{mem:.0f} | {span(mem / m_hi, mem / m_lo, "{:.2f}")}x |' if mem
                  else '- | - |')
        lines.append(
            f'| {mode} {res}, {pos_bias} (img_size {img_size}), {r["impl"]} | '
            f'{span(t_lo, t_hi, "{:.2f}")} | {t:.2f} | {span(t / t_hi, t / t_lo, "{:.2f}")}x | '
            f'{span(m_lo, m_hi, "{:.0f}")} | {memory}')
    return lines


def markdown(results, info, args):
    mem = 'peak RSS rise MB (peak RSS)' if args.device == 'cpu' else 'peak allocated MB'
    lines = [f'# TransNeXt-{args.arch.capitalize()} benchmark ({args.device})', '',
             f'- CPU: {info["cpu"]} ({info["logical_cpus"]} logical CPUs), '
             f'{info["threads"]} torch threads' + (
                 f'; GPU: {info["gpu"]} (CUDA {info["cuda"]})' if 'gpu' in info else ''),
             f'- torch {info["torch"]}, Python {info["python"]}, {info["platform"]}'
             + (f', commit {info["commit"]}' if info.get('commit') else ''),
             f'- batch {args.batch}; median of {args.repeats} runs after {args.warmup} warm-up; '
             '"median ms" is wall-clock, "CPU ms" the process CPU time (user + sys, all '
             'threads) per run; the implementations run interleaved, round by round, on one '
             'model and input (so other load hits them alike); the wall speed-up is the median '
             'of the per-round ratios',
             f'- 1-minute load average around the runs: {info["loadavg_1min_range"][0]:.1f} to '
             f'{info["loadavg_1min_range"][1]:.1f} (other work on the machine inflates times; '
             'JSON has it per row)',
             '- memory: ' + ('peak RSS rise of one step: VmHWM (restarted by writing 5 to '
                             '/proc/self/clear_refs after the model, or the op inputs, was '
                             'built) minus the RSS at that point, measured in a separate '
                             'one-step process with MALLOC_MMAP_THRESHOLD_=65536 (glibc then '
                             'returns every freed tensor to the OS, so the RSS follows live '
                             'memory); the first step, so it includes building the log-CPB '
                             'table'
                             if args.device == 'cpu' else
                             'torch.cuda.max_memory_allocated minus the allocation after build'),
             '- unfold = the authors\' approach (F.unfold k*k-fold copies of keys and values, '
             'batched matmul), defined only in the benchmark; speed-up and memory ratio are '
             'against it']
    backbone = [r for r in results if not r['mode'].startswith('ops')]
    ops = [r for r in results if r['mode'].startswith('ops')]
    gmacs = info.get('matmul_gmacs')
    runs = ', '.join(f'{g:.1f}' for g in info.get('matmul_gmacs_runs', []))
    if backbone:
        lines += ['', '## Backbone', '',
                  'forward = `model.eval()` under `torch.no_grad()` (after warm-up: the '
                  'log-CPB tables are cached); train = forward + backward (`model.train()`, '
                  'sum of the output means). memory MB = parameters + buffers + peak rise. '
                  'x floor = median time over the matmul floor: the forward\'s multiply-adds '
                  f'divided by {gmacs or 0:.1f} GMAC/s, the best of the fp32 '
                  f'{args.matmul_n}x{args.matmul_n} matmuls timed at the start and the end '
                  f'of this run ({runs}).', '']
        lines += _table(backbone, mem, ops=False, gmacs=gmacs)
        authors = _authors_table(backbone)
        if len(authors) > 2:
            lines += ['', '## Against the authors\' release', '',
                      'Their figures are those of issue 9\'s table (AMD EPYC, 2 threads, '
                      'TransNeXt-T, batch 1, memory = parameters + buffers + peak working set '
                      'of the step). Their code is not available on this machine and cannot be run '
                      'here, so the ratios compare two machines as well as two '
                      'implementations' + ('' if args.threads == 2 else
                                                   f'; this table used {args.threads} '
                                                   'thread(s), theirs 2') + '.', '']
            lines += authors
    if ops:
        lines += ['', '## Window ops alone', '',
                  'One `sliding_window_qk` + one `sliding_window_av` call at each windowed '
                  'stage\'s shape (what one block does; stage 3 has 15 blocks in T); '
                  'ops-train adds their backward.', '']
        lines += _table(ops, mem, ops=True)
    return '\n'.join(lines) + '\n'


def parse_case(text):
    parts = text.split(':')
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f'a case is MODE:RES:POS_BIAS[:IMG_SIZE], e.g. forward:1024:interpolate:512; '
            f'got {text!r}')
    mode, res, pos_bias = parts[:3]
    if mode not in MODES:
        raise argparse.ArgumentTypeError(f'mode must be one of {MODES}, got {mode!r}')
    return mode, int(res), pos_bias, int(parts[3]) if len(parts) == 4 else int(res)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='tiny')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--impls', nargs='+', default=None, choices=IMPLS,
                   help=f'default: {" ".join(i for i in IMPLS if i != "triton")} on CPU, '
                        f'{" ".join(CUDA_IMPLS)} on CUDA')
    p.add_argument('--precision', nargs='+', default=None, choices=PRECISIONS,
                   help='fp32 and/or fp16 autocast (default: fp32 on CPU, both on CUDA)')
    p.add_argument('--case', action='append', type=parse_case,
                   metavar='MODE:RES:POS_BIAS[:IMG_SIZE]',
                   help=f'mode {"|".join(MODES)}, square input side, pos_bias '
                        f'interpolate|extrapolate|linear (ignored by ops-*), img_size of the '
                        f'backbone (default: RES) (default: {" ".join(DEFAULT_CASES)})')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--out', default=None, help='write <out>.json and <out>.md')
    p.add_argument('--matmul-n', type=int, default=MATMUL_N,
                   help='side of the fp32 matmul that sets the floor (default: %(default)s)')
    # worker-only arguments
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--mode', help=argparse.SUPPRESS)
    p.add_argument('--res', type=int, help=argparse.SUPPRESS)
    p.add_argument('--pos-bias', help=argparse.SUPPRESS)
    p.add_argument('--img-size', type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument('--stage', type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument('--memory-run', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        args.precision = (args.precision or PRECISIONS[:1])[0]
        return run_worker(args)
    cuda = args.device.startswith('cuda')
    if cuda:
        import torch
        if not torch.cuda.is_available():
            print(f'--device {args.device}: no CUDA device on this machine (torch '
                  f'{torch.__version__}, CUDA build: {torch.version.cuda}); nothing to '
                  'benchmark. Run this on a machine with a GPU.')
            return 0
    args.impls = args.impls or list(CUDA_IMPLS if cuda else
                                    [i for i in IMPLS if i != 'triton'])
    args.precision = args.precision or list(PRECISIONS if cuda else PRECISIONS[:1])
    # SIGTERM -> SystemExit, so that subprocess.run kills the running worker too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    cases = args.case or [parse_case(c) for c in (CUDA_CASES if cuda else DEFAULT_CASES)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    matmul_cmd = [sys.executable, __file__, '--worker', '--mode', 'matmul', '--threads',
                  str(args.threads), '--matmul-n', str(args.matmul_n)]
    gmacs_runs = [] if args.device.startswith('cuda') else [_run(matmul_cmd, env)[0]['gmacs']]
    results = []
    runs = [(case, stage, precision) for case in cases
            for stage in (windowed_stages(args.arch, case[1]) if case[0].startswith('ops')
                          else [None])
            for precision in args.precision]
    for (mode, res, pos_bias, img_size), stage, precision in runs:
        batch = CUDA_TRAIN_BATCH if cuda and mode == 'train' and not args.case \
            else args.batch
        cmd = [sys.executable, __file__, '--worker', '--mode', mode, '--res', str(res),
               '--pos-bias', pos_bias, '--arch', args.arch, '--device', args.device,
               '--threads', str(args.threads), '--batch', str(batch),
               '--repeats', str(args.repeats), '--warmup', str(args.warmup),
               '--img-size', str(img_size), '--precision', precision]
        if stage is not None:
            cmd += ['--stage', str(stage[0])]
        load_before = os.getloadavg()[0]
        rows = _run(cmd + ['--impls', *args.impls], env)
        load = [load_before, os.getloadavg()[0]]  # 1-minute load average before, after
        for r in rows:
            r['loadavg_1min'] = load
            if not args.device.startswith('cuda'):
                # Peak RSS in a fresh one-step process per impl: with a fixed mmap
                # threshold glibc maps every block >= 64 KiB on its own and unmaps it on
                # free, so the RSS follows the live tensors (its default adaptive
                # threshold keeps freed blocks mapped).
                mem, = _run(cmd + ['--impls', r['impl'], '--memory-run'],
                            dict(env, MALLOC_MMAP_THRESHOLD_='65536'))
                r.update({k: mem[k] for k in ('peak_rss_mb', 'base_rss_mb', 'peak_mem_mb',
                                              'peak_counter', 'model_mb', 'memory_mb')
                          if k in mem})
            if stage is not None:
                r['pos_bias'] = '-'
                r['shape'] = f'{stage[3]}x{stage[3]}, {stage[1]}x{stage[2]}'
            results.append(r)
            where = f'{pos_bias}:{img_size}' if stage is None else f'stage {stage[0] + 1}'
            if r.get('self_check_failures'):
                print(f'WARNING: the run-time self-check failed for '
                      f'{r["self_check_failures"]}: those rows timed the fallback', flush=True)
            print(f'{mode:11s} {res:5d} {where:12s} {precision:13s} {r["impl"]:7s} median '
                  f'{r["median_ms"]:9.1f} ms  CPU {r["median_cpu_ms"]:9.1f} ms  peak mem '
                  f'{r["peak_mem_mb"]:8.1f} MB', flush=True)
    info = machine(args.device, args.threads)
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


if __name__ == '__main__':
    main()
