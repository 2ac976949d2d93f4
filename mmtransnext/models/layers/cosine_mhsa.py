import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .aggregated_attention import TEMPERATURE_INIT
from .cosine_query import l2_normalize, scaled_query
from .position_bias import LogCPB


class CosineMHSA(LogCPB):
    """Full self-attention of the sr_ratio == 1 stage, in TransNeXt's modified form.

    attn = (L2n(q) + query_embedding) * softplus(temperature) * ln(N) . L2n(k) + B,
    with B the log-CPB bias on the token grid (key grid = query grid).

    Args:
        dim (int): Channels C.
        num_heads (int): Heads.
        attn_drop (float), proj_drop (float): Dropout rates.
        bias_settings (PositionBiasSettings): How the stage builds its position bias.
    """

    def __init__(self, dim, num_heads, bias_settings, qkv_bias=True, attn_drop=0.,
                 proj_drop=0.):
        super().__init__(num_heads, 1, bias_settings)
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.temperature = nn.Parameter(torch.full((num_heads, 1, 1), TEMPERATURE_INIT))
        self.query_embedding = nn.Parameter(torch.zeros(num_heads, 1, self.head_dim))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.trunc_normal_(self.query_embedding, std=0.02)
        nn.init.constant_(self.temperature, TEMPERATURE_INIT)

    def forward(self, x, height, width):
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim) \
            .permute(2, 0, 3, 1, 4).unbind(0)
        q = scaled_query(l2_normalize(q), self.query_embedding, F.softplus(self.temperature),
                         math.log(N))
        # the bias added in place: the product is a fresh tensor that no backward reads
        attn = (q @ l2_normalize(k).transpose(-2, -1)) \
            .add_(self.position_bias(height, width).to(q.dtype))
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(out))
