"""Export a :class:`~.task_graph.TaskGraph` to ONNX at one fixed input size.

The TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) is used: on a
micro backbone it is about 8x faster than the dynamo one and needs no onnxscript. While it
traces, the sliding-window ops take their pure-PyTorch path
(:func:`mmtransnext.ops.export_guard.tracing_for_export`), so the graph holds standard
ONNX operators only; :func:`custom_ops` checks that on the result. The position bias is
computed before the trace and enters the graph as one constant per block
(:mod:`.frozen_bias`); adaptive average pools export exactly at any size
(:mod:`.adaptive_pool`). What else depends on the size only (window padding masks, valid
counts, softplus(temperature)) the exporter's folding leaves as small subgraphs: sizes are
traced as tensors, so the models' caches miss. :func:`fold_constants` folds them with
onnxruntime's basic optimisations (standard ONNX operators in, standard out), and
:func:`constant_nodes` checks that nothing foldable is left.
"""
import os
import warnings

import torch

from mmtransnext.compat import torchscript_onnx_exporter
from mmtransnext.models.backbones.transnext import check_input
from .adaptive_pool import exact_adaptive_pool
from .frozen_bias import frozen_position_bias

OPSET = 17  # LayerNormalization, GridSample (Mask2Former's deformable attention)
INPUT_NAME = 'input'
STANDARD_DOMAINS = ('', 'ai.onnx')

DYNAMIC_REFUSAL = (
    '--dynamic is not supported: a TransNeXt graph is specialised to one input size. The '
    'pooled-grid sizes, the window padding masks and valid counts, and the position bias '
    'of every block are computed from the input size in Python and enter the graph as '
    'constants (the position bias is even folded to one constant per block), so the same '
    'graph would compute wrong numbers at another size. Export once per deployment size '
    'with --shape H W.')


def check_shape(shape):
    """(H, W) as ints, or a ValueError before any work is done."""
    if len(shape) != 2:
        raise ValueError(f'--shape takes H W, got {shape}')
    height, width = (int(s) for s in shape)
    try:  # the backbone's own input check, on a shape-only tensor
        check_input(torch.empty(1, 3, height, width, device='meta'), in_channels=3)
    except ValueError as e:
        raise ValueError(f'--shape {height} {width}: {e}') from None
    return height, width


def export_onnx(graph, x, path, opset=OPSET):
    """Trace ``graph(x)`` into the ONNX file ``path``; returns the output names."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with frozen_position_bias(graph, x), exact_adaptive_pool(opset), torch.no_grad(), \
            warnings.catch_warnings():
        # "converting a tensor to a Python value": sizes become constants, as intended
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        names = graph.output_names(graph(x))
        torch.onnx.export(graph, (x,), path, opset_version=opset, **torchscript_onnx_exporter(),
                          do_constant_folding=True, input_names=[INPUT_NAME],
                          output_names=names)
    fold_constants(path)
    return names


def fold_constants(path):
    """Rewrite ``path`` with every input-independent subgraph folded to a constant, by
    onnxruntime's 'basic' level: constant folding and redundant-node removal, which keep to
    standard ONNX operators (the 'extended' level would add com.microsoft ones)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    folded = f'{path}.folded'
    options.optimized_model_filepath = folded
    ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    os.replace(folded, path)


def custom_ops(onnx_model):
    """'domain::op' of every node outside the standard ONNX domain (should be none)."""
    return sorted({f'{n.domain}::{n.op_type}' for n in onnx_model.graph.node
                   if n.domain not in STANDARD_DOMAINS})


def constant_nodes(onnx_model):
    """Nodes whose value does not depend on the graph input (an unfolded constant
    subgraph, e.g. a position-bias MLP that constant folding missed): should be none.
    Constant and Identity (a deduplicated initializer under a second name) compute nothing."""
    live = {i.name for i in onnx_model.graph.input}
    constant = []
    for node in onnx_model.graph.node:  # topologically sorted
        if any(name in live for name in node.input if name):
            live.update(node.output)
        elif node.op_type not in ('Constant', 'Identity'):
            constant.append(f'{node.op_type} {node.name}')
    return constant
