"""Export a TransNeXt det / seg / cls model to ONNX at one input size; optionally check it
in onnxruntime (CPU).

    python tools/deployment/pytorch2onnx.py <config> [<checkpoint>] --shape H W \
        [--pos-bias interpolate|extrapolate|linear] [--part model|backbone] \
        --out model.onnx [--verify] [--runs 5] [--threads N]

What is exported (see mmtransnext/deploy/task_graph.py): classification, the whole
classifier (logits); segmentation (UPerNet, Mask2Former), ``encode_decode``, the seg
logits at the input size; detection (Mask R-CNN, DINO), backbone + neck feature maps.
The input is the normalised [1, 3, H, W] image (no data preprocessor, no
post-processing). ``--part backbone`` exports the TransNeXt stages alone.

--verify runs onnxruntime on the same random input, prints the max abs difference per
output and the median latency of onnxruntime and PyTorch eager (same threads), and exits
with status 1 if a difference exceeds 1e-4.
--dynamic is refused (the graph is specialised to one size; the message says why).
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import os
import sys

import torch

from mmtransnext.cli.config_loading import DictAction, build_model, load_config
from mmtransnext.cli.task import init_task_scope
from mmtransnext.cli.test_options import set_pos_bias
from mmtransnext.deploy.onnx_export import (DYNAMIC_REFUSAL, INPUT_NAME, OPSET, check_shape,
                                            constant_nodes, custom_ops, export_onnx)
from mmtransnext.deploy.ort_check import TOLERANCE, compare, latency, ort_session
from mmtransnext.deploy.task_graph import PARTS, TaskGraph
from mmtransnext.models.layers.position_bias import POS_BIAS_MODES


class ExportError(RuntimeError):
    """The export ran but its result is not what was asked for."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a TransNeXt model to ONNX')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?',
                        help='weights to load (strictly); without one the weights are '
                        'random, which is enough to check the export, not to deploy')
    parser.add_argument('--shape', type=int, nargs=2, required=True, metavar=('H', 'W'))
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--pos-bias', choices=POS_BIAS_MODES,
                        help="override the backbone's position-bias mode")
    parser.add_argument('--part', choices=PARTS, default='model',
                        help='model: the task-level graph (default); backbone: TransNeXt only')
    parser.add_argument('--verify', action='store_true',
                        help='compare with onnxruntime (CPU) and time both')
    parser.add_argument('--runs', type=int, default=5, help='timed runs of --verify')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help='threads of onnxruntime and PyTorch in --verify')
    parser.add_argument('--opset', type=int, default=OPSET)
    parser.add_argument('--dynamic', action='store_true', help='refused: see the message')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random input')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def check_args(args):
    """Every problem that can be seen before building the model."""
    if args.dynamic:
        raise ValueError(DYNAMIC_REFUSAL)
    if args.checkpoint is not None and not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} not found; give the path '
                                'of a .pth file, or none to export random weights')
    if not os.path.isfile(args.config):
        raise FileNotFoundError(f'config {args.config!r} not found')
    if args.runs < 1 or args.threads < 1:
        raise ValueError('--runs and --threads must be at least 1')
    return check_shape(args.shape)


def build_graph(args):
    cfg = load_config(args.config, args.cfg_options)
    task = init_task_scope(cfg)
    model = build_model(cfg, args.checkpoint)
    if args.pos_bias:
        set_pos_bias(model, args.pos_bias)
    return TaskGraph(model, task, args.part).eval()


def export(args):
    """Export as ``args`` say; returns (graph, input, path). Raises on a bad result."""
    import onnx
    shape = check_args(args)
    graph = build_graph(args)
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(args.seed))
    names = export_onnx(graph, x, args.out, args.opset)
    onnx_model = onnx.load(args.out)
    onnx.checker.check_model(onnx_model)
    foreign = custom_ops(onnx_model)
    if foreign:
        raise ExportError(f'the graph holds non-standard ops {foreign}: no runtime would run '
                          'it; report this as a bug')
    unfolded = constant_nodes(onnx_model)
    if unfolded:
        raise ExportError(f'{len(unfolded)} nodes compute constants that folding missed '
                          f'(e.g. {unfolded[:3]}); report this as a bug')
    print(f'exported {graph.what} of {type(graph.model).__name__} at {shape[0]}x{shape[1]} '
          f'({INPUT_NAME} -> {", ".join(names)}) to {args.out}')
    return graph, x, args.out


def verify(graph, x, path, threads, runs):
    """Print the parity and latency; True if every output is within TOLERANCE."""
    session = ort_session(path, threads)
    diffs = compare(session, graph, x)
    for name, diff in diffs.items():
        print(f'  {name}: max abs diff {diff:.3g}')
    timing = latency(session, graph, x, threads, runs)
    print(f'  latency ({threads} thread(s), median of {runs}): onnxruntime '
          f'{timing.ort_ms:.1f} ms, PyTorch eager {timing.eager_ms:.1f} ms '
          f'({timing.eager_ms / timing.ort_ms:.2f}x)')
    worst = max(diffs.values())
    if worst > TOLERANCE:
        print(f'parity check FAILED: max abs diff {worst:.3g} > {TOLERANCE:g}')
        return False
    print(f'parity check passed (max abs diff {worst:.3g} <= {TOLERANCE:g})')
    return True


def main(argv=None):
    args = parse_args(argv)
    try:
        graph, x, path = export(args)
    except (ValueError, FileNotFoundError, ExportError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if args.verify and not verify(graph, x, path, args.threads, args.runs):
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
