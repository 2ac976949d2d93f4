// Input checks of the compiled ops (host side, TORCH_CHECK). The same rules and messages as
// mmtransnext/ops/checks.py, which the Python entry points and the fake kernels use: a raw
// torch.ops.mmtransnext call fails exactly like the Python API (tests run every bad-input
// case on both).
#pragma once

#include <ATen/ATen.h>

namespace mmtransnext {

inline void check_window(const char* op, int64_t height, int64_t width, int64_t kernel_size) {
  TORCH_CHECK(kernel_size >= 1 && kernel_size % 2 == 1, op,
              ": window size must be a positive odd integer (3, 5, 7, ...), got ", kernel_size,
              ": the window is centred on its query token, which needs an odd size.");
  TORCH_CHECK(height >= 1 && width >= 1, op, ": height and width must be positive, got ",
              height, " x ", width);
}

// Same dtype and device as `like` (the op's first tensor).
inline void check_like(const char* op, const char* name, const at::Tensor& t,
                       const at::Tensor& like) {
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), op, ": mixed dtypes ", like.scalar_type(),
              " and ", t.scalar_type(), " (", name, "); cast both to one dtype");
  TORCH_CHECK(t.device() == like.device(), op, ": tensors on different devices (", name, " on ",
              t.device(), ", inputs on ", like.device(), "); move them to one device");
}

// the dtypes of the ops that compute in their inputs' dtype (cpb_mlp, conv_glu_gate)
inline void check_kernel_float(const char* op, const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op,
              ": expected float32 or float64 tensors, got ", t.scalar_type());
}

inline void check_shape(const char* op, const char* name, const at::Tensor& t,
                        at::IntArrayRef shape) {
  TORCH_CHECK(t.sizes() == shape, op, ": ", name, " must have shape ", shape, ", got ",
              t.sizes());
}

inline void check_tokens(const char* op, const at::Tensor& a, int64_t height, int64_t width) {
  TORCH_CHECK(a.size(2) == height * width, op, ": H*W = ", height, "*", width, " = ",
              height * width, " but the tensors hold N = ", a.size(2), " tokens");
}

inline void check_grad(const char* op, const char* name, const at::Tensor& grad,
                       at::IntArrayRef shape, const at::Tensor& like) {
  check_shape(op, name, grad, shape);
  check_like(op, name, grad, like);
}

}  // namespace mmtransnext
