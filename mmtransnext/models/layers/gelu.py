"""GELU whose backward always sees a gradient it computes correctly."""
import torch.nn as nn
from torch import Tensor

from mmtransnext.compat import gelu_backward_needs_contiguous_grad
from mmtransnext.ops.export_guard import tracing


class GELU(nn.GELU):
    """``nn.GELU`` (same forward, no parameters) that hands its backward a contiguous
    gradient where this torch computes a strided one wrongly (torch 2.0 on CPU: the pooled
    branch of the attention receives its gradient through a channels-last view, and the
    gradients came out as 1e27 or NaN; :func:`mmtransnext.compat.
    gelu_backward_needs_contiguous_grad` probes the torch at hand). Elsewhere it is nn.GELU.

    Args:
        approximate (str): as ``nn.GELU``: 'none' (erf) or 'tanh'.
    """

    def __init__(self, approximate: str = 'none') -> None:
        super().__init__(approximate)
        # asked once per process (cached), at build time: forward stays nn.GELU's elsewhere
        self.contiguous_grad = gelu_backward_needs_contiguous_grad()

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        if (self.contiguous_grad and not tracing() and y.requires_grad
                and y.device.type == 'cpu'):
            y.register_hook(Tensor.contiguous)
        return y
