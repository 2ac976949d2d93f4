import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmtransnext.ops import AttentionInputs, aggregated_attention
from mmtransnext.ops.attention import attention_probs
from mmtransnext.ops.checks import check_window_size
from mmtransnext.ops.window_geometry import valid_counts
from .cosine_query import l2_normalize, scaled_query
from .gelu import GELU
from .position_bias import LogCPB
from .token_layout import image_as_tokens, tokens_as_image

# softplus(TEMPERATURE_INIT) = 1 / 0.24
TEMPERATURE_INIT = math.log(math.exp(1 / 0.24) - 1)


class AggregatedAttention(LogCPB):
    """Aggregated attention: one softmax over a k x k window and a pooled global map.

    Each query attends to its k x k neighbourhood (keys of the full-resolution map,
    -inf outside the image) and to P pooled tokens (GELU(sr(x)) average-pooled, normed,
    through the same ``kv``). Queries are cosine-normalised and scaled by
    softplus(temperature) * ln(n_valid + P). The window output adds learnable
    query-dependent weights (``learnable_tokens``, ``learnable_bias``).

    Args:
        dim (int): Channels C.
        num_heads (int): Heads h; head_dim = C / h.
        sr_ratio (int): Pooling ratio (> 1) of the pooled path.
        window_size (int): Odd window side k.
        attn_drop (float), proj_drop (float): Dropout rates.
        bias_settings (PositionBiasSettings): How the stage builds its position bias.
    """

    def __init__(self, dim, num_heads, sr_ratio, window_size, bias_settings, qkv_bias=True,
                 attn_drop=0., proj_drop=0.):
        super().__init__(num_heads, sr_ratio, bias_settings)
        check_window_size(window_size)
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window_size = window_size
        nk = window_size * window_size

        self.temperature = nn.Parameter(torch.full((num_heads, 1, 1), TEMPERATURE_INIT))
        self.query_embedding = nn.Parameter(torch.zeros(num_heads, 1, self.head_dim))
        self.relative_pos_bias_local = nn.Parameter(torch.zeros(num_heads, nk))
        self.learnable_tokens = nn.Parameter(torch.zeros(num_heads, self.head_dim, nk))
        self.learnable_bias = nn.Parameter(torch.zeros(num_heads, 1, nk))
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.sr = nn.Conv2d(dim, dim, kernel_size=1, stride=1)
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.act = GELU()
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.trunc_normal_(self.query_embedding, std=0.02)
        nn.init.trunc_normal_(self.learnable_tokens, std=0.02)
        nn.init.trunc_normal_(self.relative_pos_bias_local, std=0.0004)
        nn.init.zeros_(self.learnable_bias)
        nn.init.constant_(self.temperature, TEMPERATURE_INIT)

    def _heads(self, x, parts):
        B, N, _ = x.shape
        return x.view(B, N, parts, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)

    # -- the attention core runs in mmtransnext.ops.attention (fused op or torch path) --
    def attention_inputs(self, x, height, width):
        """(:class:`AttentionInputs`, pooled grid) of an H x W token map x [B, N, C]."""
        B, N, C = x.shape
        pool_hw = self.key_grid(height, width)
        n_pool = pool_hw[0] * pool_hw[1]

        # q and keys come out of the normalisation head-major and contiguous (the layout the
        # fused kernels read), values are copied so: the projections' [B, N, parts * C]
        # outputs are freed here rather than held by views while the kernels copy them again
        q = l2_normalize(self._heads(self.q(x), 1)[0])
        q_scaled = scaled_query(q, self.query_embedding, F.softplus(self.temperature),
                                self._length_scale(height, width, n_pool, x.device)
                                .to(q.dtype))

        # sr is a 1x1 conv: a linear map of the tokens; pooled channels-last (no copies)
        pooled = self.act(F.linear(x, self.sr.weight.flatten(1), self.sr.bias))
        pooled = F.adaptive_avg_pool2d(tokens_as_image(pooled, height, width), pool_hw)
        pooled = self.norm(image_as_tokens(pooled))
        key_pool, value_pool = self._heads(self.kv(pooled), 2).unbind(0)

        key, value = self._heads(self.kv(x), 2).unbind(0)
        key, value = l2_normalize(key), value.contiguous()
        pos_table, pos_rows = self.position_bias_rows(height, width)
        inputs = AttentionInputs(
            q, q_scaled, key, value, F.normalize(key_pool, dim=-1),
            value_pool, self.relative_pos_bias_local, pos_table, self.learnable_tokens,
            self.learnable_bias.view(self.num_heads, -1), pos_rows)
        return inputs, pool_hw

    def _length_scale(self, height, width, n_pool, device):
        """ln(n_valid + P) per query [N, 1]: n_valid window keys inside the image."""
        return torch.log(valid_counts(height, width, self.window_size, device) + n_pool)

    def attention_weights(self, x, height, width):
        """Softmax weights of both paths and what ``forward`` needs to apply them.

        Returns (q, value, value_pool, attn_local [B,h,N,k*k], attn_pool [B,h,N,P]),
        q cosine-normalised without scaling.
        """
        a, _ = self.attention_inputs(x, height, width)
        attn_local, attn_pool = attention_probs(a, height, width, self.window_size)
        return a.q, a.value, a.value_pool, attn_local, attn_pool

    def forward(self, x, height, width):
        B, N, C = x.shape
        inputs, pool_hw = self.attention_inputs(x, height, width)
        out = aggregated_attention(inputs, height, width, self.window_size, pool_hw,
                                   self.attn_drop)
        del inputs  # free q, keys and values before the output's layout copy
        out = out.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(out))
