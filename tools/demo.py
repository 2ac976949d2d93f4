"""`make demo`: the whole pipeline on embedded toy data, on CPU, in minutes.

1. writes the toy ADE20K-format set (data/toy/ade20k; coloured shapes, deterministic);
2. trains UPerNet + TransNeXt-micro from scratch with tools/train.py
   (configs/demo/upernet_transnext_micro_toy-ade20k.py);
3. evaluates the checkpoint with tools/test.py: single scale and --aug-test (ms + flip),
   each with the interpolated and the extrapolated position bias;
4. prints the mIoU table (also written to work_dirs/demo/results.md).

The console shows each step's progress bars, warnings and errors; each step's whole output
(mmengine's logs, the config, the environment) is in its console.log under the work dir.

Reproducible: the toy set is fixed (data seed 0), --seed seeds training (init, sampling,
augmentation, drop path) and every process runs --threads CPU threads (the rounding of
parallel CPU reductions depends on the thread count). The same machine, seed and thread
count print the same table.

Usage: python tools/demo.py [--iters N] [--seed S] [--threads T] [--work-dir DIR]
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'configs/demo/upernet_transnext_micro_toy-ade20k.py'
DATA = 'data/toy/ade20k'
DATA_SEED = 0
SEED = 0
THREADS = 2
EVALS = [('single scale', [], 'interpolate'), ('single scale', [], 'extrapolate'),
         ('ms + flip', ['--aug-test'], 'interpolate'), ('ms + flip', ['--aug-test'], 'extrapolate')]
MODES_NOTE = (
    'The position-bias modes give identical rows: trained from scratch for {iters} '
    'iterations, the position-bias MLP barely leaves its initialisation. They differ for '
    'pretrained weights at new resolutions: see tools/analysis_tools/ms_sweep.py and the '
    "README's \"Configs, results and commands\" (UPerNet ms + flip, interpolate vs "
    'extrapolate).')


def step(title):
    print(f'\n=== {title} ===', flush=True)


def demo_env(threads, base=None):
    """Environment of the demo's processes: a fixed CPU thread count and hash seed."""
    env = dict(os.environ if base is None else base)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONHASHSEED='0')
    return env


def run(args, env, log_file):
    """Run a tool; the console shows its progress, warnings and errors (ConsoleFilter), the
    whole output goes to ``log_file``. A failure prints the end of that file and stops."""
    from mmtransnext.cli.console_filter import ConsoleFilter
    print('$ ' + ' '.join(args), flush=True)
    log_file = os.path.join(ROOT, log_file)
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    console, out = ConsoleFilter(), sys.stdout.buffer
    with open(log_file, 'wb') as log:
        proc = subprocess.Popen([sys.executable] + args, cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        while chunk := proc.stdout.read1(1 << 16):
            log.write(chunk)
            out.write(console.feed(chunk))
            out.flush()
        out.write(console.flush())
        out.flush()
    if proc.wait():
        with open(log_file, 'rb') as f:
            tail = f.read().decode(errors='replace').splitlines()[-40:]
        print('\n'.join(['', f'FAILED (exit {proc.returncode}); the end of {log_file}:']
                        + tail), flush=True)
        raise SystemExit(proc.returncode)
    print(f'(full output: {os.path.relpath(log_file, ROOT)})', flush=True)


def train_args(work_dir, iters, seed):
    """tools/train.py arguments of the demo's training run: the config's schedule cut to
    ``iters`` (its warmup to at most half of them); a rerun starts over (``--overwrite``
    moves the previous run's checkpoints into ``<work_dir>/replaced_<time>/``)."""
    from mmengine.config import Config
    warmup = min(Config.fromfile(os.path.join(ROOT, CONFIG)).param_scheduler[0].end,
                 iters // 2)
    return ['tools/train.py', CONFIG, '--work-dir', work_dir, '--overwrite', '--cfg-options',
            f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}', f'param_scheduler.0.end={warmup}',
            f'param_scheduler.1.begin={warmup}', f'param_scheduler.1.end={iters}',
            f'randomness.seed={seed}']


def modes_identical(rows):
    """Whether, for every test, all position-bias modes gave the same (mIoU, aAcc)."""
    by_test = {}
    for name, _, miou, acc in rows:
        by_test.setdefault(name, set()).add((miou, acc))
    return all(len(results) == 1 for results in by_test.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=500, help='training iterations')
    parser.add_argument('--seed', type=int, default=SEED,
                        help='training seed (init, sampling, augmentation, drop path)')
    parser.add_argument('--threads', type=int, default=THREADS,
                        help='CPU threads of every step (the table depends on it)')
    parser.add_argument('--num-train', type=int, default=300)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    from mmtransnext.cli.work_dir import read_test_metrics
    env = demo_env(args.threads)

    start = time.time()
    step('1/3 toy data')
    run(['tools/misc/generate_toy_data.py', os.path.dirname(DATA), '--tasks', 'ade20k',
         '--num-train', str(args.num_train), '--num-val', str(args.num_val),
         '--img-size', '128', '--seed', str(DATA_SEED)], env,
        os.path.join(args.work_dir, 'toy_data.log'))

    step(f'2/3 train UPerNet + TransNeXt-micro for {args.iters} iterations (CPU, seed '
         f'{args.seed}, {args.threads} threads)')
    train_dir = os.path.join(args.work_dir, 'train')
    run(train_args(train_dir, args.iters, args.seed), env,
        os.path.join(train_dir, 'console.log'))
    checkpoint = os.path.join(train_dir, f'iter_{args.iters}.pth')
    train_minutes = (time.time() - start) / 60

    step('3/3 evaluate')
    rows = []
    for i, (name, extra, mode) in enumerate(EVALS):
        work_dir = os.path.join(args.work_dir, f'test_{i}')
        run(['tools/test.py', CONFIG, checkpoint, '--work-dir', work_dir, '--pos-bias', mode]
            + extra, env, os.path.join(work_dir, 'console.log'))
        metrics = read_test_metrics(work_dir)
        rows.append((name, mode, metrics['mIoU'], metrics['aAcc']))

    table = ['| test | position bias | mIoU | aAcc |', '|---|---|---|---|']
    table += [f'| {n} | {m} | {miou:.2f} | {acc:.2f} |' for n, m, miou, acc in rows]
    summary = (f'UPerNet + TransNeXt-micro, {args.iters} iterations from scratch on the toy '
               f'ADE20K set ({args.num_train} train / {args.num_val} val images, 5 classes '
               f'present), seed {args.seed}, {args.threads} threads; {train_minutes:.1f} min '
               f'to train, {(time.time() - start) / 60:.1f} min in all.\n\n'
               + '\n'.join(table) + '\n')
    if modes_identical(rows):
        summary += '\n' + MODES_NOTE.format(iters=args.iters) + '\n'
    with open(os.path.join(ROOT, args.work_dir, 'results.md'), 'w') as f:
        f.write(summary)
    print('\n' + summary)


if __name__ == '__main__':
    main()
