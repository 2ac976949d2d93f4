// CPU kernels of the sliding-window ops (see ../sliding_window.h for the math).
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

#include "sliding_window.h"

namespace mmtransnext {
namespace {

struct Geometry {
  int64_t H, W, ks, r, nk, N;
  Geometry(int64_t height, int64_t width, int64_t kernel_size)
      : H(height), W(width), ks(kernel_size), r(kernel_size / 2),
        nk(kernel_size * kernel_size), N(height * width) {}
};

// Items (image rows, heads) per parallel_for chunk, from the work of one item: small
// problems run inline, without the cost of waking the thread pool.
int64_t grain_for(int64_t work_per_row) {
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(1, work_per_row));
}

// Dot product over a contiguous row; 8 independent partial sums so that the compiler
// vectorises it (a single running sum is a serial dependency chain).
template <typename scalar_t, typename acc_t>
inline acc_t dot(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b, int64_t n) {
  acc_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    for (int l = 0; l < 8; ++l) s[l] += acc_t(a[c + l]) * acc_t(b[c + l]);
  }
  acc_t t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; c < n; ++c) t += acc_t(a[c]) * acc_t(b[c]);
  return t;
}

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
        for (int64_t i = 0; i < g.ks; ++i) {
          const int64_t ny = y + i - g.r;
          for (int64_t jj = 0; jj < g.ks; ++jj) {
            const int64_t j = i * g.ks + jj;
            const int64_t nx = x + jj - g.r;
            if (ny < 0 || ny >= g.H || nx < 0 || nx >= g.W) {
              op[j] = fill;
              continue;
            }
            acc_t s = dot<scalar_t, acc_t>(ap, b + (base + ny * g.W + nx) * d, d);
            if (bias_h) s += acc_t(bias_h[j]);
            op[j] = scalar_t(s);
          }
        }
      }
    }
  });
}

// kTranspose false: out[p] = sum_j w[p, j] * x[p + o_j]
// kTranspose true:  out[p] = sum_j w[p - o_j, j] * x[p - o_j]   (the adjoint, as a gather)
template <typename scalar_t, bool kTranspose>
void window_sum(const scalar_t* w, const scalar_t* xs, scalar_t* out, int64_t BH, int64_t d,
                const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, BH * g.H, grain_for(g.W * g.nk * d), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc_buf(d);
    acc_t* __restrict__ acc = acc_buf.data();
    for (int64_t row = begin; row < end; ++row) {
      const int64_t bh = row / g.H, y = row % g.H;
      const int64_t base = bh * g.N;
      for (int64_t x = 0; x < g.W; ++x) {
        const int64_t p = y * g.W + x;
        std::fill(acc, acc + d, acc_t(0));
        for (int64_t i = 0; i < g.ks; ++i) {
          const int64_t ny = kTranspose ? y - (i - g.r) : y + (i - g.r);
          if (ny < 0 || ny >= g.H) continue;
          for (int64_t jj = 0; jj < g.ks; ++jj) {
            const int64_t nx = kTranspose ? x - (jj - g.r) : x + (jj - g.r);
            if (nx < 0 || nx >= g.W) continue;
            const int64_t n = ny * g.W + nx;
            const acc_t wv = acc_t(w[(base + (kTranspose ? n : p)) * g.nk + i * g.ks + jj]);
            const scalar_t* __restrict__ xr = xs + (base + n) * d;
            for (int64_t c = 0; c < d; ++c) acc[c] += wv * acc_t(xr[c]);
          }
        }
        scalar_t* __restrict__ orow = out + (base + p) * d;
        for (int64_t c = 0; c < d; ++c) orow[c] = scalar_t(acc[c]);
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
            for (int64_t i = 0; i < g.ks; ++i) {
              const int64_t ny = y + i - g.r;
              if (ny < 0 || ny >= g.H) continue;
              for (int64_t jj = 0; jj < g.ks; ++jj) {
                const int64_t nx = x + jj - g.r;
                if (nx < 0 || nx >= g.W) continue;
                acc[i * g.ks + jj] += static_cast<double>(gp[i * g.ks + jj]);
              }
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
  const Geometry g(height, width, kernel_size);
  const int64_t heads = q.size(1), BH = q.size(0) * heads, d = q.size(3);
  auto out = at::empty({q.size(0), heads, g.N, g.nk}, q.options());
  MMTN_DISPATCH(q.scalar_type(), "sliding_qk_cpu", [&] {
    window_dot<scalar_t>(q.const_data_ptr<scalar_t>(), k.const_data_ptr<scalar_t>(),
                         rpb.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), BH,
                         heads, d, g, scalar_t(-std::numeric_limits<float>::infinity()));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sliding_qk_backward_cpu(
    const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k, int64_t height,
    int64_t width, int64_t kernel_size) {
  const Geometry g(height, width, kernel_size);
  const int64_t B = q.size(0), heads = q.size(1), BH = B * heads, d = q.size(3);
  auto grad_q = at::empty_like(q);
  auto grad_k = at::empty_like(k);
  auto grad_rpb = at::empty({heads, g.nk}, q.options());
  MMTN_DISPATCH(q.scalar_type(), "sliding_qk_backward_cpu", [&] {
    const scalar_t* ga = grad_attn.const_data_ptr<scalar_t>();
    window_sum<scalar_t, false>(ga, k.const_data_ptr<scalar_t>(),
                                grad_q.mutable_data_ptr<scalar_t>(), BH, d, g);
    window_sum<scalar_t, true>(ga, q.const_data_ptr<scalar_t>(),
                               grad_k.mutable_data_ptr<scalar_t>(), BH, d, g);
    rpb_grad<scalar_t>(ga, grad_rpb.mutable_data_ptr<scalar_t>(), B, heads, g);
  });
  return {grad_q, grad_k, grad_rpb};
}

at::Tensor sliding_av_cpu(const at::Tensor& attn, const at::Tensor& v, int64_t height,
                          int64_t width, int64_t kernel_size) {
  const Geometry g(height, width, kernel_size);
  const int64_t BH = v.size(0) * v.size(1), d = v.size(3);
  auto out = at::empty_like(v);
  MMTN_DISPATCH(v.scalar_type(), "sliding_av_cpu", [&] {
    window_sum<scalar_t, false>(attn.const_data_ptr<scalar_t>(), v.const_data_ptr<scalar_t>(),
                                out.mutable_data_ptr<scalar_t>(), BH, d, g);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> sliding_av_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& attn, const at::Tensor& v, int64_t height,
    int64_t width, int64_t kernel_size) {
  const Geometry g(height, width, kernel_size);
  const int64_t heads = v.size(1), BH = v.size(0) * heads, d = v.size(3);
  auto grad_attn = at::empty_like(attn);
  auto grad_v = at::empty_like(v);
  MMTN_DISPATCH(v.scalar_type(), "sliding_av_backward_cpu", [&] {
    const scalar_t* go = grad_out.const_data_ptr<scalar_t>();
    window_dot<scalar_t>(go, v.const_data_ptr<scalar_t>(), nullptr,
                         grad_attn.mutable_data_ptr<scalar_t>(), BH, heads, d, g, scalar_t(0));
    window_sum<scalar_t, true>(attn.const_data_ptr<scalar_t>(), go,
                               grad_v.mutable_data_ptr<scalar_t>(), BH, d, g);
  });
  return {grad_attn, grad_v};
}

#undef MMTN_DISPATCH

}  // namespace mmtransnext
