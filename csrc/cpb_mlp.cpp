// Input checks and CPU registration of the fused log-CPB MLP (cpb_mlp.h). The rules mirror
// check_cpb_mlp in mmtransnext/ops/checks.py, message for message.
#include <torch/library.h>

#include "common/checks.h"
#include "cpb_mlp.h"

namespace mmtransnext {
namespace {

void check_cpb_mlp(const char* op, const at::Tensor& rows, const at::Tensor& cols,
                   const at::Tensor& weight, const at::Tensor& bias) {
  check_kernel_float(op, rows);
  check_like(op, "cols", cols, rows);
  check_like(op, "weight", weight, rows);
  check_like(op, "bias", bias, rows);
  TORCH_CHECK(rows.dim() == 2 && cols.dim() == 2 && rows.size(1) == cols.size(1), op,
              ": rows [U, K] and cols [V, K] must share K, got ", rows.sizes(), " and ",
              cols.sizes());
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == rows.size(1), op,
              ": weight must be [heads, K] with K = ", rows.size(1), ", got ", weight.sizes());
  check_shape(op, "bias", bias, {weight.size(0)});
}

at::Tensor cpb_mlp(const at::Tensor& rows, const at::Tensor& cols, const at::Tensor& weight,
                   const at::Tensor& bias) {
  check_cpb_mlp("cpb_mlp", rows, cols, weight, bias);
  return cpb_mlp_cpu(rows.contiguous(), cols.contiguous(), weight.contiguous(),
                     bias.contiguous());
}

CpbMlpGrads cpb_mlp_backward(const at::Tensor& grad_out, const at::Tensor& rows,
                             const at::Tensor& cols, const at::Tensor& weight) {
  const char* op = "cpb_mlp_backward";
  check_cpb_mlp(op, rows, cols, weight, weight.select(1, 0));
  check_grad(op, "grad_out", grad_out, {rows.size(0), cols.size(0), weight.size(0)}, rows);
  return cpb_mlp_backward_cpu(grad_out.contiguous(), rows.contiguous(), cols.contiguous(),
                              weight.contiguous());
}

}  // namespace

TORCH_LIBRARY_IMPL(mmtransnext, CPU, m) {
  m.impl("cpb_mlp", &cpb_mlp);
  m.impl("cpb_mlp_backward", &cpb_mlp_backward);
}

}  // namespace mmtransnext
