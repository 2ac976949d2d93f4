// ConvGLU's gate, fused (mmtransnext/ops/conv_glu_gate.py): for tokens of a map of `height`
// x `width` rows (channels last, [B, height * width, C]),
//   out[b, (y - r0) * W + x, c] = GELU(bias[c] + sum_taps weight[c, tap] *
//                                      gate[b, (y + dy) * W + x + dx, c]) * value[b, ..., c]
// for the rows r0 <= y < r1 (value holds those rows only), the 3 x 3 depthwise taps zero
// outside the map; GELU in its erf form. Backward (the whole map, r0 = 0, r1 = height)
// recomputes the conv and GELU.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace mmtransnext {

at::Tensor conv_glu_gate_cpu(const at::Tensor& gate, const at::Tensor& value,
                             const at::Tensor& weight, const at::Tensor& bias, int64_t height,
                             int64_t width, int64_t row_begin, int64_t row_end);
// (grad_gate, grad_value, grad_weight, grad_bias)
using ConvGluGateGrads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
ConvGluGateGrads conv_glu_gate_backward_cpu(const at::Tensor& grad_out, const at::Tensor& gate,
                                            const at::Tensor& value, const at::Tensor& weight,
                                            const at::Tensor& bias, int64_t height,
                                            int64_t width);

}  // namespace mmtransnext
