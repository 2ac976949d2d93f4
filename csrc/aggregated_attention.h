// Fused aggregated attention of mmtransnext._ext (math: common/aggregated_attention_math.h).
//
// Inputs ([B, heads, N = H*W, d] unless noted): q (normalised, unscaled: learnable term),
// q_scaled (the logits' query), key (normalised), value, key_pool / value_pool
// [B, heads, P, d] (key_pool normalised; P = pool_height * pool_width), rpb [heads, k*k],
// pos_bias [heads, N, P] (shared by the batch), learnable_tokens [heads, d, k*k],
// learnable_bias [heads, k*k].
// Forward returns (out [B, heads, N, d], lse [B, heads, N] in the accumulation type).
// Backward returns the gradients of the ten tensors in input order.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace mmtransnext {

struct AggregatedAttentionInputs {
  at::Tensor q, q_scaled, key, value, key_pool, value_pool, rpb, pos_bias, learnable_tokens,
      learnable_bias;
};

std::tuple<at::Tensor, at::Tensor> aggregated_attention_cpu(const AggregatedAttentionInputs& in,
                                                            int64_t height, int64_t width,
                                                            int64_t kernel_size);
std::vector<at::Tensor> aggregated_attention_backward_cpu(const at::Tensor& grad_out,
                                                          const AggregatedAttentionInputs& in,
                                                          const at::Tensor& lse, int64_t height,
                                                          int64_t width, int64_t kernel_size);

}  // namespace mmtransnext
