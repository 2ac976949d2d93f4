"""One case in its own process (``python -m mmtransnext.analysis.worker``): the timing run
builds each model and the input once and runs the variants interleaved, round by round in
rotating order, so that other load on the machine hits them alike; the memory run (one
variant, a fresh process) measures the peak of a few steps. Prints ``RESULT {json}`` lines."""
import argparse
import json
import statistics
import time

from .cases import Case
from .implementations import OURS, use_impl
from .memory import MB


def _variant(text):
    impl, _, precision = text.partition(':')
    return impl, precision or 'fp32'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--mode', required=True, help="a case's mode, or 'matmul'")
    p.add_argument('--res', type=int)
    p.add_argument('--pos-bias')
    p.add_argument('--img-size', type=int)
    p.add_argument('--stage', type=int, default=None)
    p.add_argument('--arch', default='tiny')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--variants', nargs='+', type=_variant, default=[('fused', 'fp32')],
                   metavar='IMPL:PRECISION')
    p.add_argument('--authors-repo', default=None)
    p.add_argument('--memory-run', action='store_true')
    p.add_argument('--memory-steps', type=int, default=1)
    p.add_argument('--matmul-n', type=int, default=2048)
    return p.parse_args(argv)


def _emit(result):
    print('RESULT ' + json.dumps(result), flush=True)


def _switch(impl):
    if impl in OURS:
        use_impl(impl)


def _build(args, device):
    """{variant: step}, {variant: (model, what)} (models shared by our implementations),
    the input, and the case."""
    import torch

    from .workloads import backbone_step, build_model, model_group, ops_step
    case = Case(args.mode, args.res, args.pos_bias, args.img_size or args.res)
    _switch(args.variants[0][0])
    if args.mode.startswith('ops'):
        step = ops_step(args.arch, args.res, args.stage, args.batch, args.mode, device)
        return {v: step for v in args.variants}, {}, None, case
    x = torch.randn(args.batch, 3, args.res, args.res, device=device)
    built, models, steps = {}, {}, {}
    for impl, precision in args.variants:
        group = model_group(impl)
        if group not in built:
            model, what = build_model(impl, case, args.arch, args.authors_repo)
            model.to(device)
            model.train(args.mode == 'train')  # some train() overrides return None
            built[group] = (model, what)
        models[impl, precision] = built[group]
        steps[impl, precision] = backbone_step(built[group][0], x, args.mode, precision)
    return steps, models, x, case


def _memory_run(args, steps, models, common):
    """CPU peak memory over ``--memory-steps`` steps of one variant (the driver sets
    MALLOC_MMAP_THRESHOLD_); memory = parameters + buffers + the peak rise."""
    from .memory import model_mb, peak_rise_mb
    (variant, step), = steps.items()

    def run():
        for _ in range(args.memory_steps):
            step()
    peak, base, counter = peak_rise_mb(run)
    result = dict(common, impl=variant[0], precision=variant[1], peak_rss_mb=peak,
                  base_rss_mb=base, peak_mem_mb=peak - base, peak_counter=counter,
                  memory_steps=args.memory_steps)
    if variant in models:
        result['model_mb'] = model_mb(models[variant][0])
        result['memory_mb'] = result['model_mb'] + result['peak_mem_mb']
    _emit(result)


def run(args):
    import torch
    if args.mode == 'matmul':
        from .floor import matmul_gmacs
        _emit(dict(matmul_n=args.matmul_n, gmacs=matmul_gmacs(args.threads, args.matmul_n)))
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    steps, models, x, case = _build(args, device)
    common = dict(mode=args.mode, res=args.res, pos_bias=args.pos_bias, stage=args.stage,
                  img_size=case.img_size, batch=args.batch, arch=args.arch,
                  device=args.device, threads=args.threads)
    if args.memory_run:
        return _memory_run(args, steps, models, common)

    def timed(variant):
        _switch(variant[0])
        steps[variant]()
        if cuda:
            torch.cuda.synchronize(device)

    macs = _count_macs(models, x) if args.mode == 'forward' else {}
    variants = list(args.variants)
    wall = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    peak_mem = {}
    for v in variants:  # warm-up (and the CUDA peak memory, one variant at a time)
        if cuda:
            torch.cuda.synchronize(device)
            base_alloc = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(args.warmup):
            timed(v)
        if cuda:
            peak_mem[v] = (torch.cuda.max_memory_allocated(device) - base_alloc) / MB
    for r in range(args.repeats):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            t0, c0 = time.perf_counter(), time.process_time()
            timed(v)
            wall[v].append((time.perf_counter() - t0) * 1e3)
            cpu[v].append((time.process_time() - c0) * 1e3)
    errors = _relative_errors(variants, models, x) if x is not None else {}
    from mmtransnext.ops import self_check

    from .workloads import model_group
    for v in variants:
        impl, precision = v
        result = dict(common, impl=impl, precision=precision,
                      median_ms=statistics.median(wall[v]), min_ms=min(wall[v]),
                      times_ms=wall[v],
                      # process CPU time (all threads) per run; with several threads it
                      # includes OpenMP barrier spinning
                      median_cpu_ms=statistics.median(cpu[v]), cpu_times_ms=cpu[v])
        if v in models:
            result['model'] = models[v][1]
        if model_group(impl) in macs:
            result['macs'] = macs[model_group(impl)]
        if ('unfold', precision) in wall:
            result['median_round_speedup_vs_unfold'] = statistics.median(
                u / t for u, t in zip(wall['unfold', precision], wall[v]))
        if v in errors:
            result['rel_err_vs_fp32'] = errors[v]
        if v in peak_mem:
            result['peak_mem_mb'] = peak_mem[v]
        if impl in OURS and self_check.failures():  # the rows timed a fallback
            result['self_check_failures'] = [f'{i} {d} {t}' for i, d, t in
                                             self_check.failures()]
        _emit(result)


def _count_macs(models, x):
    """{model group: multiply-adds of one forward}, the authors' excepted (the count adds
    our window ops only). Runs before the warm-up: the count clears our bias caches."""
    from .flops import forward_macs
    from .workloads import model_group
    macs = {}
    for (impl, _), (model, _) in models.items():
        if impl != 'authors' and model_group(impl) not in macs:
            _switch(impl)
            macs[model_group(impl)] = forward_macs(model, x)
    return macs


def _relative_errors(variants, models, x):
    """{variant: relative error of its outputs against the same model's fp32 outputs} for
    the variants in a reduced precision (same implementation, one forward each)."""
    from .workloads import forward_outputs, relative_error
    errors = {}
    for impl, precision in variants:
        if precision != 'fp32' and (impl, 'fp32') in models:
            _switch(impl)
            model = models[impl, precision][0]
            errors[impl, precision] = relative_error(forward_outputs(model, x, precision),
                                                     forward_outputs(model, x, 'fp32'))
    return errors


def main(argv=None):
    from mmtransnext.cli.upstream_warnings import filter_upstream_warnings
    filter_upstream_warnings()
    run(parse_args(argv))


if __name__ == '__main__':
    main()
