import torch
import torch.nn as nn
import torch.nn.functional as F

from mmtransnext.ops import conv_glu_gate
from mmtransnext.ops.export_guard import tracing

from .gated_tail_recompute import GatedTailRecompute
from .gelu import GELU
from .token_layout import image_as_tokens, tokens_as_image

# Tokens per band of the inference path: the hidden tensors of one band instead of the whole
# map (TransNeXt-T at 512 x 512: 16384 tokens x 384 channels in stage 1, 4096 x 768 in
# stage 2: 25 MB and 12.6 MB each).
BAND_TOKENS = 1024


class DWConv(nn.Module):
    """Depthwise 3x3 convolution over tokens laid out as an H x W image.

    Runs channels-last: the tokens are already that layout, and oneDNN's channels-last
    depthwise kernel is about 10x faster on CPU than its NCHW one (384 channels at 128 x 128:
    2.1 ms against 22 ms plus a 16 ms transpose copy, 2 threads).

    Args:
        dim (int): Channels (one filter each).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x, height, width, weight=None, bias=None):
        """The conv of the tokens x [B, N, C]; ``weight`` / ``bias`` stand in for the
        module's own (detached copies in a recomputation)."""
        conv = self.dwconv
        weight = conv.weight if weight is None else weight
        bias = conv.bias if bias is None else bias
        # .to(), not .contiguous(): a [C, 1, k, k] weight already counts as channels-last
        # contiguous, but oneDNN picks its layout from the strides, which .to() sets
        x = F.conv2d(tokens_as_image(x, height, width),
                     weight.to(memory_format=torch.channels_last), bias, conv.stride,
                     conv.padding, conv.dilation, conv.groups)
        return image_as_tokens(x)


class ConvolutionalGLU(nn.Module):
    """Convolutional GLU: fc2(GELU(dwconv(gate)) * value), gate = first half of fc1's output.

    Args:
        in_features (int): Token channels C.
        hidden_features (int): Hidden width; TransNeXt uses int(2 * C * mlp_ratio / 3).
        drop (float): Dropout after the gated product and after fc2.
    """

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features * 2)
        self.dwconv = DWConv(hidden_features)
        self.act = GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x, height, width):
        if torch.is_grad_enabled() and not tracing() and not self._dropout_active():
            return self._forward_recomputing(x, height, width)
        if (torch.is_grad_enabled() or self.training or tracing()
                or height * width <= BAND_TOKENS):
            return self._forward_map(x, height, width)
        return self._forward_bands(x, height, width)

    def _dropout_active(self):
        return self.training and self.drop.p > 0

    def gated(self, gate, value, height, width, dw_weight=None, dw_bias=None, rows=None):
        """act(dwconv(gate)) * value: the hidden tokens fc2 reads, for the rows ``rows``
        (first, end) of the gate's height x width map (default all), which ``value`` holds.
        The fused op where it serves (:mod:`mmtransnext.ops.conv_glu_gate`), else torch ops;
        ``dw_weight`` / ``dw_bias`` stand in for the conv's own."""
        conv = self.dwconv.dwconv
        weight = conv.weight if dw_weight is None else dw_weight
        bias = conv.bias if dw_bias is None else dw_bias
        first, end = rows or (0, height)
        if (conv_glu_gate.usable(gate) and value.dtype == gate.dtype
                and self.act.approximate == 'none'):
            return conv_glu_gate.conv_glu_gate(gate, value, weight, bias, height, width, first,
                                               end)
        hidden = self.act(self.dwconv(gate, height, width, weight, bias))
        return hidden[:, first * width:end * width] * value

    def _forward_recomputing(self, x, height, width):
        """Autograd on: the map at once, backward keeping only gate and value
        (:class:`GatedTailRecompute`)."""
        gate, value = self._gate_value(x)
        conv, fc2 = self.dwconv.dwconv, self.fc2
        return GatedTailRecompute.apply(self.gated, height, width, gate, value, conv.weight,
                                        conv.bias, fc2.weight, fc2.bias)

    def _gate_value(self, x, value_tokens=slice(None)):
        """fc1 as two products, so gate and value come out contiguous (the gate is the
        channels-last input of the depthwise conv without a copy); the value of the tokens
        ``value_tokens`` only."""
        hidden = self.fc2.in_features
        weight, bias = self.fc1.weight, self.fc1.bias
        return (F.linear(x, weight[:hidden], bias[:hidden]),
                F.linear(x[:, value_tokens], weight[hidden:], bias[hidden:]))

    def _forward_map(self, x, height, width):
        x = self.gated(*self._gate_value(x), height, width)
        x = self.drop(x)
        return self.drop(self.fc2(x))

    def _forward_bands(self, x, height, width):
        """Inference (no autograd, eval): the same numbers, one band of rows at a time; each
        band's depthwise conv reads one row above and below it (its 3 x 3 halo)."""
        rows = max(1, BAND_TOKENS // width)
        out = x.new_empty(x.shape[0], height * width, self.fc2.out_features)
        for top in range(0, height, rows):
            bottom = min(top + rows, height)
            above, below = max(top - 1, 0), min(bottom + 1, height)
            inner = slice((top - above) * width, (bottom - above) * width)
            gate, value = self._gate_value(x[:, above * width:below * width], inner)
            hidden = self.gated(gate, value, below - above, width,
                                rows=(top - above, bottom - above))
            del gate, value
            out[:, top * width:bottom * width] = self.fc2(hidden)
        return out
