// Input checks and device dispatch of the sliding-window ops (TORCH_LIBRARY_IMPL per device).
// The rules are those of common/checks.h, message for message those of mmtransnext/ops/checks.py,
// so a direct torch.ops.mmtransnext call fails like the Python entry points.
#include <torch/library.h>

#include "common/checks.h"
#include "sliding_window.h"

namespace mmtransnext {
namespace {

void check_pair(const char* op, const char* na, const at::Tensor& a, const char* nb,
                const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 4 && b.dim() == 4, op, ": expected 4-D [B, heads, N, C] tensors, got ",
              na, " ", a.sizes(), " and ", nb, " ", b.sizes());
  check_like(op, nb, b, a);
  TORCH_CHECK(a.size(0) == b.size(0) && a.size(1) == b.size(1) && a.size(2) == b.size(2), op,
              ": batch, heads and tokens must match, got ", na, " ", a.sizes(), " and ", nb, " ",
              b.sizes());
  TORCH_CHECK(at::isFloatingType(a.scalar_type()), op, ": expected floating-point tensors, got ",
              a.scalar_type());
}

void check_qk(const char* op, const at::Tensor& q, const at::Tensor& k, int64_t height,
              int64_t width, int64_t kernel_size) {
  check_window(op, height, width, kernel_size);
  check_pair(op, "q", q, "k", k);
  TORCH_CHECK(q.size(3) == k.size(3), op, ": head_dim of q (", q.size(3), ") and k (",
              k.size(3), ") differ");
  check_tokens(op, q, height, width);
}

void check_rpb(const char* op, const at::Tensor& q, const at::Tensor& rpb, int64_t kernel_size) {
  const int64_t nk = kernel_size * kernel_size;
  TORCH_CHECK(rpb.dim() == 2 && rpb.size(0) == q.size(1) && rpb.size(1) == nk, op,
              ": rpb must be [heads, k*k] = [", q.size(1), ", ", nk, "], got ", rpb.sizes());
  check_like(op, "rpb", rpb, q);
}

void check_av(const char* op, const at::Tensor& attn, const at::Tensor& v, int64_t height,
              int64_t width, int64_t kernel_size) {
  check_window(op, height, width, kernel_size);
  check_pair(op, "attn", attn, "v", v);
  const int64_t nk = kernel_size * kernel_size;
  TORCH_CHECK(attn.size(3) == nk, op, ": attn has ", attn.size(3),
              " window entries, kernel_size ", kernel_size, " needs ", nk);
  check_tokens(op, v, height, width);
}

std::vector<int64_t> qk_shape(const at::Tensor& q, int64_t kernel_size) {
  return {q.size(0), q.size(1), q.size(2), kernel_size * kernel_size};
}

// ---- checked entry points, one set per device -----------------------------------------
// (The kernels get checked, contiguous tensors.)

#define MMTN_DEFINE_ENTRIES(DEV)                                                              \
  at::Tensor sliding_qk_##DEV##_entry(const at::Tensor& q, const at::Tensor& k,               \
                                      const at::Tensor& rpb, int64_t height, int64_t width,   \
                                      int64_t kernel_size) {                                  \
    check_qk("sliding_qk", q, k, height, width, kernel_size);                                 \
    check_rpb("sliding_qk", q, rpb, kernel_size);                                             \
    return sliding_qk_##DEV(q.contiguous(), k.contiguous(), rpb.contiguous(), height, width,  \
                            kernel_size);                                                     \
  }                                                                                           \
  std::tuple<at::Tensor, at::Tensor, at::Tensor> sliding_qk_backward_##DEV##_entry(           \
      const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k, int64_t height,  \
      int64_t width, int64_t kernel_size) {                                                   \
    check_qk("sliding_qk_backward", q, k, height, width, kernel_size);                        \
    check_grad("sliding_qk_backward", "grad_attn", grad_attn, qk_shape(q, kernel_size), q);   \
    return sliding_qk_backward_##DEV(grad_attn.contiguous(), q.contiguous(), k.contiguous(),  \
                                     height, width, kernel_size);                             \
  }                                                                                           \
  at::Tensor sliding_av_##DEV##_entry(const at::Tensor& attn, const at::Tensor& v,            \
                                      int64_t height, int64_t width, int64_t kernel_size) {   \
    check_av("sliding_av", attn, v, height, width, kernel_size);                              \
    return sliding_av_##DEV(attn.contiguous(), v.contiguous(), height, width, kernel_size);   \
  }                                                                                           \
  std::tuple<at::Tensor, at::Tensor> sliding_av_backward_##DEV##_entry(                       \
      const at::Tensor& grad_out, const at::Tensor& attn, const at::Tensor& v,                \
      int64_t height, int64_t width, int64_t kernel_size) {                                   \
    check_av("sliding_av_backward", attn, v, height, width, kernel_size);                     \
    check_grad("sliding_av_backward", "grad_out", grad_out, v.sizes(), v);                    \
    return sliding_av_backward_##DEV(grad_out.contiguous(), attn.contiguous(),                \
                                     v.contiguous(), height, width, kernel_size);             \
  }

MMTN_DEFINE_ENTRIES(cpu)
#ifdef WITH_CUDA
MMTN_DEFINE_ENTRIES(cuda)
#endif
#undef MMTN_DEFINE_ENTRIES

}  // namespace
}  // namespace mmtransnext

TORCH_LIBRARY_IMPL(mmtransnext, CPU, m) {
  m.impl("sliding_qk", &mmtransnext::sliding_qk_cpu_entry);
  m.impl("sliding_qk_backward", &mmtransnext::sliding_qk_backward_cpu_entry);
  m.impl("sliding_av", &mmtransnext::sliding_av_cpu_entry);
  m.impl("sliding_av_backward", &mmtransnext::sliding_av_backward_cpu_entry);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(mmtransnext, CUDA, m) {
  m.impl("sliding_qk", &mmtransnext::sliding_qk_cuda_entry);
  m.impl("sliding_qk_backward", &mmtransnext::sliding_qk_backward_cuda_entry);
  m.impl("sliding_av", &mmtransnext::sliding_av_cuda_entry);
  m.impl("sliding_av_backward", &mmtransnext::sliding_av_backward_cuda_entry);
}
#endif
