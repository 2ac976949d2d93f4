// CPU kernels of the sliding-window ops (see ../sliding_window.h for the math; element
// math in ../common/window_geometry.h, shared with the CUDA kernels).
//
// Parallel over image rows of every (batch, head) with at::parallel_for; each query touches
// its k*k neighbours' rows, contiguous over head_dim. Accumulation in at::opmath_type
// (float for half / bfloat16). Nothing here depends on the thread count or scheduling, so
// results (the rpb gradient included) are deterministic.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "common/torch_version.h"
#include "cpu/window_kernels_cpu.h"
#include "sliding_window.h"

namespace mmtransnext {
namespace {

using cpu::grain_for;
using cpu::window_sum;

// out[p, j] = a[p] . b[p + o_j] (+ bias[head, j]); `fill` where p + o_j is outside.
template <typename scalar_t>
void window_dot(const scalar_t* a, const scalar_t* b, const scalar_t* bias, scalar_t* out,
                int64_t BH, int64_t heads, int64_t d, const Geometry& g, scalar_t fill) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, BH * g.H, grain_for(g.W * g.nk * d), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t bh = row / g.H, y = row % g.H;
      const int64_t base = bh * g.N;
      const scalar_t* bias_h = bias ? bias + (bh % heads) * g.nk : nullptr;
      for (int64_t x = 0; x < g.W; ++x) {
        const int64_t p = y * g.W + x;
        const scalar_t* ap = a + (base + p) * d;
        scalar_t* op = out + (base + p) * g.nk;
        for (int64_t j = 0; j < g.nk; ++j) {
          int64_t n;
          if (!window_neighbour(g, y, x, j, &n)) {
            op[j] = fill;
            continue;
          }
          acc_t s = dot<acc_t>(ap, b + (base + n) * d, d);
          if (bias_h) s += acc_t(bias_h[j]);
          op[j] = scalar_t(s);
        }
      }
    }
  });
}

// grad_rpb[h, j] = sum over b and inside p of grad[b, h, p, j]: one head per task, fixed
// summation order, double accumulation.
template <typename scalar_t>
void rpb_grad(const scalar_t* grad, scalar_t* out, int64_t B, int64_t heads, const Geometry& g) {
  at::parallel_for(0, heads, grain_for(B * g.N * g.nk), [&](int64_t begin, int64_t end) {
    std::vector<double> acc(g.nk);
    for (int64_t h = begin; h < end; ++h) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < B; ++b) {
        const scalar_t* gb = grad + (b * heads + h) * g.N * g.nk;
        for (int64_t y = 0; y < g.H; ++y) {
          for (int64_t x = 0; x < g.W; ++x) {
            const scalar_t* gp = gb + (y * g.W + x) * g.nk;
            for (int64_t j = 0; j < g.nk; ++j) {
              int64_t n;
              if (window_neighbour(g, y, x, j, &n)) acc[j] += static_cast<double>(gp[j]);
            }
          }
        }
      }
      for (int64_t j = 0; j < g.nk; ++j) out[h * g.nk + j] = scalar_t(acc[j]);
    }
  });
}

}  // namespace

#define MMTN_DISPATCH(TYPE, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, TYPE, NAME, __VA_ARGS__)

at::Tensor sliding_qk_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& rpb,
                          int64_t height, int64_t width, int64_t kernel_size) {
  const Geometry g = make_geometry(height, width, kernel_size);
  const int64_t heads = q.size(1), BH = q.size(0) * heads, d = q.size(3);
  auto out = at::empty({q.size(0), heads, g.N, g.nk}, q.options());
  MMTN_DISPATCH(q.scalar_type(), "sliding_qk_cpu", [&] {
    window_dot<scalar_t>(const_ptr<scalar_t>(q), const_ptr<scalar_t>(k),
                         const_ptr<scalar_t>(rpb), mutable_ptr<scalar_t>(out), BH,
                         heads, d, g, scalar_t(-std::numeric_limits<float>::infinity()));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sliding_qk_backward_cpu(
    const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k, int64_t height,
    int64_t width, int64_t kernel_size) {
  const Geometry g = make_geometry(height, width, kernel_size);
  const int64_t B = q.size(0), heads = q.size(1), BH = B * heads, d = q.size(3);
  auto grad_q = at::empty_like(q);
  auto grad_k = at::empty_like(k);
  auto grad_rpb = at::empty({heads, g.nk}, q.options());
  MMTN_DISPATCH(q.scalar_type(), "sliding_qk_backward_cpu", [&] {
    const scalar_t* ga = const_ptr<scalar_t>(grad_attn);
    window_sum<scalar_t, scalar_t, scalar_t, false>(ga, const_ptr<scalar_t>(k),
                                mutable_ptr<scalar_t>(grad_q), BH, d, g);
    window_sum<scalar_t, scalar_t, scalar_t, true>(ga, const_ptr<scalar_t>(q),
                               mutable_ptr<scalar_t>(grad_k), BH, d, g);
    rpb_grad<scalar_t>(ga, mutable_ptr<scalar_t>(grad_rpb), B, heads, g);
  });
  return {grad_q, grad_k, grad_rpb};
}

at::Tensor sliding_av_cpu(const at::Tensor& attn, const at::Tensor& v, int64_t height,
                          int64_t width, int64_t kernel_size) {
  const Geometry g = make_geometry(height, width, kernel_size);
  const int64_t BH = v.size(0) * v.size(1), d = v.size(3);
  auto out = at::empty_like(v);
  MMTN_DISPATCH(v.scalar_type(), "sliding_av_cpu", [&] {
    window_sum<scalar_t, scalar_t, scalar_t, false>(const_ptr<scalar_t>(attn), const_ptr<scalar_t>(v),
                                mutable_ptr<scalar_t>(out), BH, d, g);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> sliding_av_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& attn, const at::Tensor& v, int64_t height,
    int64_t width, int64_t kernel_size) {
  const Geometry g = make_geometry(height, width, kernel_size);
  const int64_t heads = v.size(1), BH = v.size(0) * heads, d = v.size(3);
  auto grad_attn = at::empty_like(attn);
  auto grad_v = at::empty_like(v);
  MMTN_DISPATCH(v.scalar_type(), "sliding_av_backward_cpu", [&] {
    const scalar_t* go = const_ptr<scalar_t>(grad_out);
    window_dot<scalar_t>(go, const_ptr<scalar_t>(v), nullptr,
                         mutable_ptr<scalar_t>(grad_attn), BH, heads, d, g, scalar_t(0));
    window_sum<scalar_t, scalar_t, scalar_t, true>(const_ptr<scalar_t>(attn), go,
                               mutable_ptr<scalar_t>(grad_v), BH, d, g);
  });
  return {grad_attn, grad_v};
}

#undef MMTN_DISPATCH

}  // namespace mmtransnext
