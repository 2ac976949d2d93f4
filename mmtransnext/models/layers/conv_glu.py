import torch.nn as nn


class DWConv(nn.Module):
    """Depthwise 3x3 convolution over tokens laid out as an H x W image."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x, height, width):
        B, N, C = x.shape
        x = x.transpose(1, 2).reshape(B, C, height, width)
        return self.dwconv(x).flatten(2).transpose(1, 2)


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
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x, height, width):
        gate, value = self.fc1(x).chunk(2, dim=-1)
        x = self.act(self.dwconv(gate, height, width)) * value
        x = self.drop(x)
        return self.drop(self.fc2(x))
