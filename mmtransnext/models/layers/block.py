import torch.nn as nn
from mmcv.cnn.bricks import DropPath

from .aggregated_attention import AggregatedAttention
from .conv_glu import ConvolutionalGLU
from .cosine_mhsa import CosineMHSA
from .token_layout import image_as_tokens


class OverlapPatchEmbed(nn.Module):
    """Strided convolution to tokens, then LayerNorm (eps 1e-5).

    Args:
        patch_size (int): Kernel size (7 for the stem, 3 after); padding = patch_size // 2.
        stride (int): 4 for the stem, 2 after.
    """

    def __init__(self, in_channels, embed_dim, patch_size, stride):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride, patch_size // 2)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-5)

    def forward(self, x):
        x = self.proj(x)
        height, width = x.shape[-2:]
        return self.norm(image_as_tokens(x)), height, width


class TransNeXtBlock(nn.Module):
    """Pre-norm block: x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x))).

    ``window_size`` None selects :class:`CosineMHSA` (sr_ratio must be 1); an odd window
    selects :class:`AggregatedAttention` (sr_ratio > 1). ``bias_settings``
    (:class:`PositionBiasSettings`) says how the attention builds its position bias.

    Args:
        dim (int): Channels of the tokens.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden channels of the ConvGLU over ``dim``.
        sr_ratio (int): Pooling ratio of the pooled keys (1: full attention).
        window_size (int | None): Side of the sliding window (odd), or None.
        bias_settings (PositionBiasSettings): The stage's position-bias settings.
        qkv_bias (bool): Bias in the query / key / value projections.
        drop (float): Dropout after the projections.
        attn_drop (float): Dropout on the attention weights.
        drop_path (float): Stochastic-depth rate of this block.
    """

    def __init__(self, dim, num_heads, mlp_ratio, sr_ratio, window_size, bias_settings,
                 qkv_bias=True, drop=0., attn_drop=0., drop_path=0.):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if window_size is None:
            self.attn = CosineMHSA(dim, num_heads, bias_settings, qkv_bias, attn_drop, drop)
        else:
            self.attn = AggregatedAttention(dim, num_heads, sr_ratio, window_size,
                                            bias_settings, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ConvolutionalGLU(dim, int(2 * dim * mlp_ratio / 3), drop)

    def forward(self, x, height, width):
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))
