// Input checks and CPU registration of ConvGLU's fused gate (conv_glu_gate.h). The rules
// mirror check_conv_glu_gate in mmtransnext/ops/checks.py, message for message.
#include <torch/library.h>

#include "common/checks.h"
#include "conv_glu_gate.h"

namespace mmtransnext {
namespace {

void check_conv_glu_gate(const char* op, const at::Tensor& gate, const at::Tensor& value,
                         const at::Tensor& weight, const at::Tensor& bias, int64_t height,
                         int64_t width, int64_t row_begin, int64_t row_end) {
  check_kernel_float(op, gate);
  check_like(op, "value", value, gate);
  check_like(op, "weight", weight, gate);
  check_like(op, "bias", bias, gate);
  TORCH_CHECK(height >= 1 && width >= 1, op, ": height and width must be positive, got ",
              height, " x ", width);
  TORCH_CHECK(0 <= row_begin && row_begin < row_end && row_end <= height, op,
              ": output rows [", row_begin, ", ", row_end, ") must lie in [0, ", height, ")");
  TORCH_CHECK(gate.dim() == 3 && gate.size(1) == height * width, op,
              ": gate must be [B, height * width, C] = [B, ", height * width, ", C], got ",
              gate.sizes());
  const int64_t B = gate.size(0), C = gate.size(2);
  check_shape(op, "value", value, {B, (row_end - row_begin) * width, C});
  check_shape(op, "weight", weight, {C, 1, 3, 3});
  check_shape(op, "bias", bias, {C});
}

at::Tensor conv_glu_gate(const at::Tensor& gate, const at::Tensor& value,
                         const at::Tensor& weight, const at::Tensor& bias, int64_t height,
                         int64_t width, int64_t row_begin, int64_t row_end) {
  check_conv_glu_gate("conv_glu_gate", gate, value, weight, bias, height, width, row_begin,
                      row_end);
  return conv_glu_gate_cpu(gate.contiguous(), value.contiguous(), weight.contiguous(),
                           bias.contiguous(), height, width, row_begin, row_end);
}

ConvGluGateGrads conv_glu_gate_backward(const at::Tensor& grad_out, const at::Tensor& gate,
                                        const at::Tensor& value, const at::Tensor& weight,
                                        const at::Tensor& bias, int64_t height, int64_t width) {
  const char* op = "conv_glu_gate_backward";
  check_conv_glu_gate(op, gate, value, weight, bias, height, width, 0, height);
  check_grad(op, "grad_out", grad_out, value.sizes(), gate);
  return conv_glu_gate_backward_cpu(grad_out.contiguous(), gate.contiguous(),
                                    value.contiguous(), weight.contiguous(), bias.contiguous(),
                                    height, width);
}

}  // namespace

TORCH_LIBRARY_IMPL(mmtransnext, CPU, m) {
  m.impl("conv_glu_gate", &conv_glu_gate);
  m.impl("conv_glu_gate_backward", &conv_glu_gate_backward);
}

}  // namespace mmtransnext
