// Fused aggregated attention of mmtransnext._ext (math: common/aggregated_attention_math.h).
//
// Inputs ([B, heads, N = H*W, d] unless noted): q (normalised, unscaled: learnable term),
// q_scaled (the logits' query), key (normalised), value, key_pool / value_pool
// [B, heads, P, d] (key_pool normalised; P = pool_height * pool_width), rpb [heads, k*k],
// pos_table [heads, R, W * Wk] and pos_rows [H * Hk] (int64): the position bias of the
// pooled path (shared by the batch) as a row table, bias[h, (qy, qx), (ky, kx)] =
// pos_table[h, pos_rows[qy * Hk + ky], qx * Wk + kx] (mmtransnext/ops/bias_rows.py),
// learnable_tokens [heads, d, k*k], learnable_bias [heads, k*k].
// Forward returns (out [B, heads, N, d], lse [B, heads, N] in the accumulation type).
// Backward returns the gradients of the ten floating-point tensors in input order.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace mmtransnext {

struct AggregatedAttentionInputs {
  at::Tensor q, q_scaled, key, value, key_pool, value_pool, rpb, pos_table, learnable_tokens,
      learnable_bias, pos_rows;
};

std::tuple<at::Tensor, at::Tensor> aggregated_attention_cpu(const AggregatedAttentionInputs& in,
                                                            int64_t height, int64_t width,
                                                            int64_t kernel_size,
                                                            int64_t pool_height,
                                                            int64_t pool_width);
std::vector<at::Tensor> aggregated_attention_backward_cpu(const at::Tensor& grad_out,
                                                          const AggregatedAttentionInputs& in,
                                                          const at::Tensor& lse, int64_t height,
                                                          int64_t width, int64_t kernel_size,
                                                          int64_t pool_height,
                                                          int64_t pool_width);

}  // namespace mmtransnext
