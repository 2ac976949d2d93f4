"""ONNX export (tools/deployment/pytorch2onnx.py) of micro models on CPU: onnxruntime parity
of every task's graph in both position-bias modes with the compiled ops loaded,
the folded position bias, --verify, and the errors. Exports run in-process. (The export
guard on its own: tests/test_deploy/test_export_guard.py.)"""
import onnx
import pytest
import torch

from mmtransnext.deploy.onnx_export import constant_nodes, custom_ops
from mmtransnext.deploy.ort_check import TOLERANCE, compare, ort_session
from mmtransnext.ops import ext_loader
from tools_testing import (cls_config, dino_config, load_tool, mask2former_config,
                           mask_rcnn_config, upernet_config)

pytorch2onnx = load_tool('deployment/pytorch2onnx')

# the raw exports below pick the TorchScript-based exporter on purpose, as the tool does
pytestmark = pytest.mark.filterwarnings(
    'ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning')

# not the configs' img_size (64 or 128): 'interpolate' then really resizes the bias
SHAPE = (64, 96)
MODELS = {  # name: (override config, number of outputs)
    'cls': (lambda tmp: cls_config(tmp, tmp / 'data'), 1),
    'upernet': (lambda tmp: upernet_config(tmp, tmp / 'data'), 1),
    'mask2former': (lambda tmp: mask2former_config(tmp, tmp / 'data'), 1),
    'mask_rcnn': (lambda tmp: mask_rcnn_config(tmp, tmp / 'data'), 5),   # FPN levels
    'dino': (lambda tmp: dino_config(tmp, tmp / 'data', scales=5), 5),  # ChannelMapper
}
_EXPORTS = {}


def tool_args(config, out, *extra):
    return [str(config), '--shape', *map(str, SHAPE), '--out', str(out), *extra]


def exported(name, mode, tmp_path_factory):
    """(graph, input, onnx path) of ``name`` in position-bias ``mode``, exported once."""
    if (name, mode) not in _EXPORTS:
        tmp = tmp_path_factory.mktemp(f'{name}_{mode}')
        args = pytorch2onnx.parse_args(tool_args(MODELS[name][0](tmp), tmp / 'model.onnx',
                                                 '--pos-bias', mode))
        _EXPORTS[name, mode] = pytorch2onnx.export(args)
    return _EXPORTS[name, mode]


# mmseg 1.0.0's Mask2FormerHead.predict builds data samples that torch's tracer refuses
# ("Named tensors are not supported with the tracer"); tested with mmseg 1.2.2
MASK2FORMER_EXPORT = pytest.mark.needs('mmsegmentation', (1, 2, 2),
                                       "tracing mmseg's Mask2FormerHead.predict")


@pytest.mark.parametrize('mode', ['interpolate', 'extrapolate'])
@pytest.mark.parametrize('name', [pytest.param(n, marks=MASK2FORMER_EXPORT)
                                  if n == 'mask2former' else n for n in MODELS])
def test_onnxruntime_parity(name, mode, tmp_path_factory):
    # the compiled ops are present: the export guard, not their absence, keeps them out
    assert ext_loader.load() is not None, ext_loader.load_error()
    graph, x, path = exported(name, mode, tmp_path_factory)
    model = onnx.load(path)
    assert custom_ops(model) == []
    assert constant_nodes(model) == []  # position bias (and all else) folded
    assert not [i for i in model.graph.initializer if 'cpb_fc' in i.name]
    assert all(m.pos_bias == mode for m in graph.modules() if hasattr(m, 'cpb_fc1'))
    diffs = compare(ort_session(path, threads=1), graph, x)
    assert len(diffs) == MODELS[name][1]
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_verify_cli(tmp_path, capsys):
    """--verify prints the parity per output and both latencies, and passes."""
    cfg = MODELS['cls'][0](tmp_path)
    code = pytorch2onnx.main(tool_args(cfg, tmp_path / 'cls.onnx', '--verify', '--runs', '2',
                                       '--threads', '1'))
    out = capsys.readouterr().out
    assert code == 0, out
    assert 'logits: max abs diff' in out and 'onnxruntime' in out and 'PyTorch eager' in out
    assert 'parity check passed' in out


def test_verify_fails_above_tolerance(tmp_path_factory, capsys):
    """A model that no longer matches its ONNX file fails --verify's check."""
    graph, x, path = exported('cls', 'extrapolate', tmp_path_factory)
    changed = {k: v.clone() for k, v in graph.state_dict().items()}
    try:
        with torch.no_grad():
            graph.model.head.fc.bias.add_(1e-3)
        assert not pytorch2onnx.verify(graph, x, path, threads=1, runs=1)
    finally:
        graph.load_state_dict(changed)
    assert 'parity check FAILED' in capsys.readouterr().out


@pytest.mark.parametrize('extra, message', [
    (['--shape', '16', '64'], 'at least 32x32 pixels, got 16x64'),
    (['--dynamic'], '--dynamic is not supported: a TransNeXt graph is specialised'),
    (['missing.pth'], "checkpoint 'missing.pth' not found"),
])
def test_errors(tmp_path, capsys, extra, message):
    cfg = MODELS['upernet'][0](tmp_path)
    out = tmp_path / 'model.onnx'
    argv = tool_args(cfg, out)
    if extra[0] == 'missing.pth':
        argv.insert(1, str(tmp_path / 'missing.pth'))
        message = message.replace("'missing.pth'", repr(str(tmp_path / 'missing.pth')))
    else:
        argv += extra
    assert pytorch2onnx.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # refused before any work
