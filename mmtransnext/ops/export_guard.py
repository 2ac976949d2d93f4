"""Whether the current call is being traced, in one place for every dispatch point.

* :func:`tracing_for_export`: ``torch.onnx.export`` runs (either exporter). The
  sliding-window ops (:mod:`.sliding_window`) then take the pure-PyTorch path, so the
  exported graph holds standard ONNX operators only, never ``mmtransnext::*`` custom ops
  that no runtime knows. (They keep their compiled kernels under torch.compile, FX and
  torch.jit.trace, which know them through their fake kernels.)
* :func:`tracing`: any tracing or export (torch.compile / torch.export, FX symbolic
  tracing, TorchScript, ONNX export). The fused attention (:mod:`.attention`), which has
  no torch-level equivalent in a traced graph, takes the torch path then.
"""
import torch

from mmtransnext.compat import is_compiling, is_fx_tracing


def tracing_for_export() -> bool:
    """True while ``torch.onnx.export`` runs (either exporter)."""
    return torch.onnx.is_in_onnx_export()


def tracing() -> bool:
    """True while the call is traced or exported by any of torch's tracers."""
    return (is_compiling() or torch.jit.is_scripting() or torch.jit.is_tracing()
            or tracing_for_export() or is_fx_tracing())
