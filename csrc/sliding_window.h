// Sliding-window attention ops of mmtransnext._ext (declarations shared by the CPU and
// CUDA kernels). Tensors are [B, heads, N = H*W, C]; offsets of the k x k window are
// o_j = (j / k - k / 2, j % k - k / 2), j = 0 .. k*k - 1 row-major.
//
//   sliding_qk:  attn[b,h,p,j] = q[b,h,p] . k[b,h,p+o_j] + rpb[h,j]   (-inf outside)
//   sliding_av:  out[b,h,p]    = sum_j attn[b,h,p,j] * v[b,h,p+o_j]   (v = 0 outside)
//
// Every op (and both backward ops) reduces to three window primitives on [BH, N, *]
// contiguous tensors:
//   window_dot:        out[p, j] = a[p] . b[p + o_j] (+ bias[h, j]), `fill` outside
//   window_sum:        out[p]    = sum_j w[p, j] * x[p + o_j]
//   window_sum_t:      out[p]    = sum_j w[p - o_j, j] * x[p - o_j]   (transpose of window_sum)
// plus a deterministic reduction for the rpb gradient:
//   grad_rpb[h, j] = sum over b and inside p of grad[b, h, p, j].
// The implementations behind the *_cpu / *_cuda entry points receive checked,
// contiguous inputs (see sliding_window.cpp).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace mmtransnext {

at::Tensor sliding_qk_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& rpb,
                          int64_t height, int64_t width, int64_t kernel_size);
std::tuple<at::Tensor, at::Tensor, at::Tensor> sliding_qk_backward_cpu(
    const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k, int64_t height,
    int64_t width, int64_t kernel_size);
at::Tensor sliding_av_cpu(const at::Tensor& attn, const at::Tensor& v, int64_t height,
                          int64_t width, int64_t kernel_size);
std::tuple<at::Tensor, at::Tensor> sliding_av_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& attn, const at::Tensor& v, int64_t height,
    int64_t width, int64_t kernel_size);

#ifdef WITH_CUDA
at::Tensor sliding_qk_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& rpb,
                           int64_t height, int64_t width, int64_t kernel_size);
std::tuple<at::Tensor, at::Tensor, at::Tensor> sliding_qk_backward_cuda(
    const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k, int64_t height,
    int64_t width, int64_t kernel_size);
at::Tensor sliding_av_cuda(const at::Tensor& attn, const at::Tensor& v, int64_t height,
                           int64_t width, int64_t kernel_size);
std::tuple<at::Tensor, at::Tensor> sliding_av_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& attn, const at::Tensor& v, int64_t height,
    int64_t width, int64_t kernel_size);
#endif

}  // namespace mmtransnext
