"""Whether the current call is being traced for a model export (ONNX).

The dispatch point of the sliding-window ops (:mod:`.sliding_window`) asks this before it
picks the compiled extension: while ``torch.onnx.export`` traces the model (the
TorchScript-based exporter and the dynamo one alike) the ops take the pure-PyTorch path,
so the exported graph holds standard ONNX operators only, never ``mmtransnext::*`` custom
ops that no runtime knows. Compiled ops with their own dispatch ask the same predicate.
"""
import torch


def tracing_for_export() -> bool:
    """True while ``torch.onnx.export`` runs (either exporter)."""
    return torch.onnx.is_in_onnx_export()
