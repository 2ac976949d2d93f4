"""The benchmark's Markdown report: the rows per implementation, then the authors'
release side by side, bf16 against fp32, the reference backbones and the window ops."""
import statistics

from .cases import REFERENCES
from .floor import times_floor
from .implementations import OURS
from .references import NAMES

ORDER = OURS + ('authors', ) + REFERENCES
NO_AUTHORS = ("The authors' release was not run (no `--authors-repo`), so there is no "
              'side-by-side column and no ratio.')


def round_ratio(a, b):
    """Median over the rounds of a's time / b's time (both ran in each round)."""
    return statistics.median(x / y for x, y in zip(a['times_ms'], b['times_ms']))


def _case_key(r):
    return r['mode'], r['res'], r['pos_bias'], r.get('img_size', r['res'])


def _by_case(rows):
    """{(case, stage, precision): {impl: row}}"""
    out = {}
    for r in rows:
        out.setdefault(_case_key(r) + (r.get('stage'), r.get('precision', 'fp32')),
                       {})[r['impl']] = r
    return out


def _case_name(mode, res, pos_bias, img_size):
    return f'{mode} {res}, {pos_bias}' + (f' (img_size {img_size})' if img_size != res else '')


def _table(rows, mem_header, ops, gmacs=None):
    head = '| mode | input | ' + ('stage (tokens, heads x dim) |' if ops else
                                 'pos_bias (img_size) |')
    extra = '' if ops else ' memory MB | x floor |'
    lines = [head + f' impl | median ms | CPU ms | {mem_header} |{extra} speed-up vs unfold '
             '(wall / CPU) | memory vs unfold |',
             '|---|---|---|---|---:|---:|---:|' + ('' if ops else '---:|---:|') + '---:|---:|']
    for (mode, res, pos_bias, img_size, stage, precision), impls in _by_case(rows).items():
        if precision != 'fp32':
            mode = f'{mode} ({precision})'
        ref = impls.get('unfold')
        for impl in ORDER:
            r = impls.get(impl)
            if r is None:
                continue
            m = '-' if 'peak_mem_mb' not in r else (
                f'{r["peak_mem_mb"]:.1f}' if ops else f'{r["peak_mem_mb"]:.0f}')
            if 'peak_rss_mb' in r:
                m += f' ({r["peak_rss_mb"]:.0f})'
            speed = (f'{r["median_round_speedup_vs_unfold"]:.2f}x / '
                     f'{ref["median_cpu_ms"] / r["median_cpu_ms"]:.2f}x'
                     if ref and 'median_round_speedup_vs_unfold' in r else '-')
            ratio = (f'{r["peak_mem_mb"] / ref["peak_mem_mb"]:.2f}'
                     if ref and ref.get('peak_mem_mb', 0) > 0 and 'peak_mem_mb' in r else '-')
            where = (f'{stage + 1} ({r["shape"]})' if ops else f'{pos_bias} ({img_size})')
            if not ops:
                m += f' | {r["memory_mb"]:.0f}' if 'memory_mb' in r else ' | -'
                floor = times_floor(r['median_ms'], r.get('macs'), gmacs)
                m += f' | {floor:.2f}' if floor else ' | -'
            lines.append(f'| {mode} | {res}x{res} | {where} | {impl} | {r["median_ms"]:.1f} | '
                         f'{r["median_cpu_ms"]:.1f} | {m} | {speed} | {ratio} |')
    return lines


def _ours(impls):
    """Our row of a case: the first measured of our implementations (the default first)."""
    return next((impls[i] for i in OURS if i in impls), None)


def authors_table(rows, gmacs=None):
    """Ours (default path, fp32) against the authors' release, both from this run."""
    lines = ['| case | their build | authors s | ours s | time ratio | authors MB | ours MB | '
             'memory ratio | ours x floor |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|']
    for (mode, res, pos_bias, img_size, stage, precision), impls in _by_case(rows).items():
        theirs, ours = impls.get('authors'), _ours(impls)
        if precision != 'fp32' or not theirs or not ours:
            continue
        mem = (f'{theirs["memory_mb"]:.0f} | {ours["memory_mb"]:.0f} | '
               f'{ours["memory_mb"] / theirs["memory_mb"]:.2f}x'
               if 'memory_mb' in theirs and 'memory_mb' in ours else '- | - | -')
        floor = times_floor(ours['median_ms'], ours.get('macs'), gmacs)
        lines.append(
            f'| {_case_name(mode, res, pos_bias, img_size)}, {ours["impl"]} | '
            f'{theirs.get("model", "-")} | {theirs["median_ms"] / 1e3:.2f} | '
            f'{ours["median_ms"] / 1e3:.2f} | {round_ratio(ours, theirs):.2f}x | {mem} | '
            + (f'{floor:.2f} |' if floor else '- |'))
    return lines


def precision_table(rows):
    """Each reduced-precision row against the same implementation's fp32 row."""
    lines = ['| case | impl | precision | fp32 ms | ms | speed-up | relative error vs fp32 | '
             'fp32 MB | MB |', '|---|---|---|---:|---:|---:|---:|---:|---:|']
    fp32 = {_case_key(r) + (r['impl'], ): r for r in rows if r.get('precision') == 'fp32'}
    for r in rows:
        base = fp32.get(_case_key(r) + (r['impl'], ))
        if r.get('precision', 'fp32') == 'fp32' or base is None:
            continue
        err = r.get('rel_err_vs_fp32')
        mem = (f'{base["memory_mb"]:.0f} | {r["memory_mb"]:.0f}'
               if 'memory_mb' in r and 'memory_mb' in base else '- | -')
        lines.append(f'| {_case_name(*_case_key(r))} | {r["impl"]} | {r["precision"]} | '
                     f'{base["median_ms"]:.1f} | {r["median_ms"]:.1f} | '
                     f'{round_ratio(base, r):.2f}x | '
                     + (f'{err:.1e}' if err is not None else '-') + f' | {mem} |')
    return lines


def references_table(rows, gmacs=None):
    """Ours (default path, fp32) and the reference backbones of the same case: GMAC
    counted the same way, time per GMAC."""
    lines = ['| case | backbone | built as | GMAC | median ms | ms per GMAC | x floor | '
             'memory MB |', '|---|---|---|---:|---:|---:|---:|---:|']
    for (mode, res, pos_bias, img_size, stage, precision), impls in _by_case(rows).items():
        others = [impls[n] for n in REFERENCES if n in impls]
        ours = _ours(impls)
        if precision != 'fp32' or not others:
            continue
        for r in ([ours] if ours else []) + others:
            name = NAMES.get(r['impl'], f'TransNeXt ({r["impl"]})')
            macs = r.get('macs')
            floor = times_floor(r['median_ms'], macs, gmacs)
            lines.append(
                f'| {_case_name(mode, res, pos_bias, img_size)} | {name} | '
                f'{r.get("model", "-")} | ' + (f'{macs / 1e9:.1f}' if macs else '-') +
                f' | {r["median_ms"]:.1f} | ' + (f'{r["median_ms"] / (macs / 1e9):.1f}'
                                                  if macs else '-') +
                ' | ' + (f'{floor:.2f}' if floor else '-') + ' | ' +
                (f'{r["memory_mb"]:.0f}' if 'memory_mb' in r else '-') + ' |')
    return lines


def _header(info, args):
    authors = info.get('authors')
    steps = getattr(args, 'train_memory_steps', 1)
    return [
        f'# TransNeXt-{args.arch.capitalize()} benchmark ({args.device})', '',
        f'- CPU: {info["cpu"]} ({info["logical_cpus"]} logical CPUs), '
        f'{info["threads"]} torch threads' + (
            f'; GPU: {info["gpu"]} (CUDA {info["cuda"]})' if 'gpu' in info else ''),
        f'- torch {info["torch"]}, Python {info["python"]}, {info["platform"]}'
        + (f', commit {info["commit"]}' if info.get('commit') else ''),
        "- the authors' release: " + (
            f'commit {authors["commit"]}, `{authors["file"]}` (sha256 {authors["sha256"]}), '
            f'from {authors["path"]}' if authors else 'not run (no `--authors-repo`)'),
        f'- batch {args.batch}; median of {args.repeats} runs after {args.warmup} warm-up; '
        '"median ms" is wall-clock, "CPU ms" the process CPU time (user + sys, all '
        'threads) per run; all implementations of a case (ours, the authors\', the '
        'reference backbones, each precision) run interleaved, round by round, in one '
        'process on one input (so other load hits them alike); ratios are the median of '
        'the per-round ratios',
        f'- 1-minute load average around the runs: {info["loadavg_1min_range"][0]:.1f} to '
        f'{info["loadavg_1min_range"][1]:.1f} (other work on the machine inflates times; '
        'JSON has it per row)',
        '- memory: ' + (
            'parameters + buffers + the peak RSS rise, for every implementation by the same '
            'probe: in a fresh process per implementation, after the model and input are '
            'built, 5 is written to /proc/self/clear_refs (VmHWM restarts from the current '
            'RSS); after the steps, VmHWM minus that RSS is the peak working set. glibc is '
            'told to return freed blocks to the OS (MALLOC_MMAP_THRESHOLD_=65536), so the '
            'RSS follows live tensors. Forward: the first step (it builds the log-CPB '
            f'table); training step: {steps} steps with the gradients kept between them'
            if args.device == 'cpu' else
            'torch.cuda.max_memory_allocated minus the allocation after build'),
    ]


def markdown(results, info, args):
    mem = 'peak RSS rise MB (peak RSS)' if args.device == 'cpu' else 'peak allocated MB'
    lines = _header(info, args)
    backbone = [r for r in results if not r['mode'].startswith('ops')]
    ops = [r for r in results if r['mode'].startswith('ops')]
    gmacs = info.get('matmul_gmacs')
    runs = ', '.join(f'{g:.1f}' for g in info.get('matmul_gmacs_runs', []))
    if backbone:
        lines += ['', '## Backbone', '',
                  'forward = `model.eval()` under `torch.no_grad()` (after warm-up: our '
                  'log-CPB tables are cached); train = forward + backward (`model.train()`, '
                  'sum of the output means, gradients accumulated, never zeroed). memory MB = '
                  'parameters + buffers + peak rise. x floor = median time over the matmul '
                  'floor: the forward\'s multiply-adds divided by '
                  f'{gmacs or 0:.1f} GMAC/s, the best of the fp32 '
                  f'{args.matmul_n}x{args.matmul_n} matmuls timed at the start and the end '
                  f'of this run ({runs}). unfold = the authors\' window attention inside our '
                  'model (F.unfold k*k-fold copies, batched matmul), defined only in the '
                  'benchmark.', '']
        lines += _table(backbone, mem, ops=False, gmacs=gmacs)
        lines += ['', '## Side by side with the authors\' release', '']
        if info.get('authors'):
            lines += ['Their mmseg backbone (PyTorch-native attention, random weights, drop '
                      'path off, as ours) in the same process and rounds as ours, on the '
                      'same input. time ratio = ours / theirs, the median of the per-round '
                      'ratios; memory ratio = ours / theirs, each parameters + buffers + '
                      'peak working set. Our \'linear\' mode has no counterpart in their '
                      'backbone.', '']
            lines += authors_table(backbone, gmacs)
        else:
            lines += [NO_AUTHORS]
        precision = precision_table(backbone)
        if len(precision) > 2:
            lines += ['', '## Reduced precision against fp32', '',
                      'The same model and input under `torch.autocast` (forward) or, for the '
                      'bf16 training step, through `BF16OptimWrapper` (the configs\' bf16 '
                      'wrapper on a CPU); speed-up = fp32 time / this time, per round; '
                      'relative error = ||outputs - fp32 outputs|| / ||fp32 outputs|| over '
                      'the four feature maps of one forward.', '']
            lines += precision
        refs = references_table(backbone, gmacs)
        if len(refs) > 2:
            lines += ['', '## Against Swin-T and ConvNeXt-T', '',
                      'The backbones users would pick instead, fp32, in the same rounds; '
                      'GMAC counted the same way for all (mmengine\'s FlopAnalyzer, plus our '
                      'window ops).', '']
            lines += refs
    if ops:
        lines += ['', '## Window ops alone', '',
                  'One `sliding_window_qk` + one `sliding_window_av` call at each windowed '
                  'stage\'s shape (what one block does; stage 3 has 15 blocks in T); '
                  'ops-train adds their backward.', '']
        lines += _table(ops, mem, ops=True)
    return '\n'.join(lines) + '\n'
