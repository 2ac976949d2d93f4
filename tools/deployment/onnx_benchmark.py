"""onnxruntime vs PyTorch eager latency on CPU: the TransNeXt-T backbone and UPerNet-T.

Each case is exported with tools/deployment/pytorch2onnx.py's code path (random weights:
latency does not depend on them), checked for parity (<= 1e-4) and timed: onnxruntime and
eager alternate run by run, same input, same number of threads; the table gives the
medians. Run it on an otherwise idle machine.

    python tools/deployment/onnx_benchmark.py --size 512 --threads 2 --runs 10 \
        --out benchmarks/onnx_cpu_2threads
Writes <out>.md and <out>.json.
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytorch2onnx import export, parse_args  # noqa: E402

from mmtransnext.deploy.ort_check import TOLERANCE, compare, latency, ort_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
UPERNET_T = ROOT / 'configs/upernet/upernet_transnext_tiny.py'
# name, config, part, position-bias mode
CASES = (('TransNeXt-T backbone', UPERNET_T, 'backbone', 'interpolate'),
         ('UPerNet-T (seg logits)', UPERNET_T, 'model', 'interpolate'))


def run_case(name, config, part, pos_bias, size, threads, runs, tmp):
    out = Path(tmp) / f'{part}.onnx'
    args = parse_args([str(config), '--shape', str(size), str(size), '--out', str(out),
                       '--part', part, '--pos-bias', pos_bias])
    graph, x, path = export(args)
    session = ort_session(path, threads)
    diff = max(compare(session, graph, x).values())
    timing = latency(session, graph, x, threads, runs)
    row = dict(load_avg_1min=round(os.getloadavg()[0], 2), case=name, size=size,
               pos_bias=pos_bias, threads=threads, runs=runs, ort_ms=round(timing.ort_ms, 1),
               eager_ms=round(timing.eager_ms, 1),
               speedup=round(timing.eager_ms / timing.ort_ms, 2), max_abs_diff=diff)
    print(row, flush=True)
    return row


def cpu_name():
    for line in Path('/proc/cpuinfo').read_text().splitlines():
        if line.startswith('model name'):
            return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def markdown(rows, command):
    import onnxruntime
    loads = [r['load_avg_1min'] for r in rows]
    lines = [
        f'# onnxruntime vs PyTorch eager on CPU, {rows[0]["threads"]} thread(s)', '',
        f'`{command}`', '',
        f'{cpu_name()} ({os.cpu_count()} logical CPUs); torch {torch.__version__}, '
        f'onnxruntime {onnxruntime.__version__}; batch 1, fp32, random weights; medians of '
        f'{rows[0]["runs"]} runs, onnxruntime and eager alternating. Parity: max abs '
        f'difference of all outputs (limit {TOLERANCE:g}). 1-minute load average after '
        f'each case: {", ".join(map(str, loads))} (other work on the machine inflates '
        'both times). Eager gathers (and in interpolate mode resizes) the position bias in '
        'every forward from the cached log-CPB table, as the PyTorch model does; the ONNX '
        'graph holds the finished bias as constants.', '',
        '| model | input | position bias | onnxruntime (ms) | eager (ms) | eager / ort '
        '| max abs diff |',
        '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f'| {r["case"]} | {r["size"]}x{r["size"]} | {r["pos_bias"]} | '
                     f'{r["ort_ms"]} | {r["eager_ms"]} | {r["speedup"]} | '
                     f'{r["max_abs_diff"]:.2g} |')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--out', required=True, help='output prefix (.md and .json)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_case(*case, args.size, args.threads, args.runs, tmp) for case in CASES]
    command = 'python tools/deployment/onnx_benchmark.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix('.json').write_text(json.dumps(rows, indent=1) + '\n')
    out.with_suffix('.md').write_text(markdown(rows, command))
    print(f'wrote {out}.md and {out}.json')


if __name__ == '__main__':
    main()
