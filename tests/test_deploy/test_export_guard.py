"""The export guard keeps the compiled ops out of an ONNX graph: traced for export, the
sliding-window ops take their torch path (no custom op in the graph, onnxruntime agrees);
without the guard the exporter meets the compiled op and cannot translate it."""
import onnx
import pytest
import torch

from mmtransnext.compat import torchscript_onnx_exporter
from mmtransnext.deploy.onnx_export import custom_ops
from mmtransnext.deploy.ort_check import ort_session
from mmtransnext.ops import ext_loader, sliding_window_av, sliding_window_qk

# the raw exports below pick the TorchScript-based exporter on purpose, as the tool does
pytestmark = pytest.mark.filterwarnings(
    'ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning')


class WindowOps(torch.nn.Module):
    """The two compiled ops on a 5 x 6 map, window 3."""

    def __init__(self):
        super().__init__()
        self.rpb = torch.nn.Parameter(torch.randn(2, 9))

    def forward(self, q):
        attn = sliding_window_qk(q, q, self.rpb, 5, 6, 3).softmax(-1)
        return sliding_window_av(attn, q, 5, 6, 3)


def test_export_guard_keeps_compiled_ops_out(tmp_path, monkeypatch):
    assert ext_loader.load() is not None, ext_loader.load_error()
    module, q = WindowOps(), torch.randn(1, 2, 30, 4)
    path = tmp_path / 'ops.onnx'
    torch.onnx.export(module, (q,), path, opset_version=17, **torchscript_onnx_exporter())
    model = onnx.load(path)
    assert custom_ops(model) == []
    got = ort_session(path, threads=1).run(None, {model.graph.input[0].name: q.numpy()})[0]
    assert torch.allclose(torch.from_numpy(got), module(q), atol=1e-5)
    # without the guard the exporter meets the compiled op and cannot translate it
    from mmtransnext.ops import sliding_window
    monkeypatch.setattr(sliding_window, 'tracing_for_export', lambda: False)
    with pytest.raises(Exception, match='mmtransnext'):
        torch.onnx.export(module, (q,), tmp_path / 'raw.onnx', opset_version=17,
                          **torchscript_onnx_exporter())
