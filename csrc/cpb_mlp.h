// The log-CPB MLP's second half on every (row, column) pair of coordinates, fused
// (mmtransnext/ops/cpb_mlp.py):
//   out[u, v, j] = bias[j] + sum_k weight[j, k] * max(rows[u, k] + cols[v, k], 0)
// rows [U, K] (cpb_fc1 on the row coordinates, with its bias), cols [V, K] (cpb_fc1 on the
// column coordinates), weight [heads, K], bias [heads] (cpb_fc2); out [U, V, heads]. The
// [U, V, K] hidden activations are never stored: backward recomputes them pair by pair.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace mmtransnext {

at::Tensor cpb_mlp_cpu(const at::Tensor& rows, const at::Tensor& cols, const at::Tensor& weight,
                       const at::Tensor& bias);
// (grad_rows, grad_cols, grad_weight, grad_bias)
using CpbMlpGrads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
CpbMlpGrads cpb_mlp_backward_cpu(const at::Tensor& grad_out, const at::Tensor& rows,
                                 const at::Tensor& cols, const at::Tensor& weight);

}  // namespace mmtransnext
