// CPU kernel of the fused log-CPB MLP (../cpb_mlp.h). One task per row coordinate u: the
// hidden vector max(rows[u] + cols[v], 0) of each pair lives in a K-float buffer only.
// Backward recomputes it; grad_rows[u] is written by u's task alone, the sums over u
// (grad_cols, grad_weight, grad_bias) go to partial sums of fixed chunks of rows, added in
// chunk order afterwards: deterministic, and independent of the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "common/torch_version.h"
#include "cpb_mlp.h"
#include "cpu/partial_sums.h"
#include "cpu/target_clones.h"
#include "cpu/vec8.h"

namespace mmtransnext {
namespace {

constexpr int64_t kChunks = 8;  // backward partial sums: chunks of row coordinates

template <typename T>
inline __attribute__((always_inline)) void hidden_of_pair(const T* ru, const T* cv, T* h,
                                                          int64_t K) {
#pragma omp simd
  for (int64_t k = 0; k < K; ++k) {
    const T pre = ru[k] + cv[k];
    h[k] = pre > T(0) ? pre : T(0);
  }
}

template <typename T>
inline __attribute__((always_inline)) void forward_row_impl(const T* ru, const T* cols,
                                                            const T* w, const T* b, T* out,
                                                            T* h, int64_t V, int64_t K,
                                                            int64_t heads) {
  for (int64_t v = 0; v < V; ++v) {
    hidden_of_pair(ru, cols + v * K, h, K);
    for (int64_t j = 0; j < heads; ++j) {
      const T* wj = w + j * K;
      T s = T(0);
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < K; ++k) s += wj[k] * h[k];
      out[v * heads + j] = b[j] + s;
    }
  }
}

// One row u of backward: grad_row (owned), and this chunk's partial sums.
template <typename T>
inline __attribute__((always_inline)) void backward_row_impl(
    const T* g_row, const T* ru, const T* cols, const T* w, T* grad_row, T* gc, T* gw, T* gb,
    T* h, T* gh, int64_t V, int64_t K, int64_t heads) {
  for (int64_t v = 0; v < V; ++v) {
    const T* g = g_row + v * heads;
    hidden_of_pair(ru, cols + v * K, h, K);
    std::fill(gh, gh + K, T(0));
    for (int64_t j = 0; j < heads; ++j) {
      const T gj = g[j];
      const T* wj = w + j * K;
      T* gwj = gw + j * K;
#pragma omp simd
      for (int64_t k = 0; k < K; ++k) {
        gh[k] += gj * wj[k];
        gwj[k] += gj * h[k];
      }
      gb[j] += gj;
    }
    T* gcv = gc + v * K;
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) {
      const T d = h[k] > T(0) ? gh[k] : T(0);  // ReLU' (pre > 0)
      grad_row[k] += d;
      gcv[k] += d;
    }
  }
}

// float: k-outer over 8 lanes, the hidden vector recomputed per group of up to 4 heads whose
// sums are independent accumulators (one accumulator per dot would wait on each add)
template <int N>
inline __attribute__((always_inline)) void head_group(const float* ru, const float* cv,
                                                      const float* w, const float* b,
                                                      int64_t K, float* out) {
  cpu::f32x8 acc[N] = {};
  const cpu::f32x8 zero = {};
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    cpu::f32x8 hv = cpu::load8(ru + k) + cpu::load8(cv + k);
    hv = hv > zero ? hv : zero;
    for (int j = 0; j < N; ++j) acc[j] += cpu::load8(w + j * K + k) * hv;
  }
  for (int j = 0; j < N; ++j) {
    const cpu::f32x8 a = acc[j];
    float s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    for (int64_t t = k; t < K; ++t) {
      const float pre = ru[t] + cv[t];
      s += w[j * K + t] * (pre > 0.f ? pre : 0.f);
    }
    out[j] = b[j] + s;
  }
}

MMTN_CLONES void forward_row(const float* ru, const float* cols, const float* w,
                             const float* b, float* out, float*, int64_t V, int64_t K,
                             int64_t heads) {
  for (int64_t v = 0; v < V; ++v) {
    const float* cv = cols + v * K;
    float* o = out + v * heads;
    int64_t j = 0;
    for (; j + 4 <= heads; j += 4) head_group<4>(ru, cv, w + j * K, b + j, K, o + j);
    switch (heads - j) {
      case 3: head_group<3>(ru, cv, w + j * K, b + j, K, o + j); break;
      case 2: head_group<2>(ru, cv, w + j * K, b + j, K, o + j); break;
      case 1: head_group<1>(ru, cv, w + j * K, b + j, K, o + j); break;
      default: break;
    }
  }
}
void forward_row(const double* ru, const double* cols, const double* w, const double* b,
                 double* out, double* h, int64_t V, int64_t K, int64_t heads) {
  forward_row_impl(ru, cols, w, b, out, h, V, K, heads);
}
// float: k-outer over 8 lanes, the hidden vector and its gradient in registers
MMTN_CLONES void backward_row(const float* g_row, const float* ru, const float* cols,
                              const float* w, float* grad_row, float* gc, float* gw, float* gb,
                              float* h, float* gh, int64_t V, int64_t K, int64_t heads) {
  if (K % 8) {
    backward_row_impl(g_row, ru, cols, w, grad_row, gc, gw, gb, h, gh, V, K, heads);
    return;
  }
  const cpu::f32x8 zero = {};
  for (int64_t v = 0; v < V; ++v) {
    const float* g = g_row + v * heads;
    const float* cv = cols + v * K;
    float* gcv = gc + v * K;
    for (int64_t k = 0; k < K; k += 8) {
      cpu::f32x8 hv = cpu::load8(ru + k) + cpu::load8(cv + k);
      hv = hv > zero ? hv : zero;
      cpu::f32x8 ghv = zero;
      for (int64_t j = 0; j < heads; ++j) {
        ghv += g[j] * cpu::load8(w + j * K + k);
        float* gwj = gw + j * K + k;
        cpu::store8(gwj, cpu::load8(gwj) + g[j] * hv);
      }
      const cpu::f32x8 d = hv > zero ? ghv : zero;  // ReLU' (pre > 0)
      cpu::store8(grad_row + k, cpu::load8(grad_row + k) + d);
      cpu::store8(gcv + k, cpu::load8(gcv + k) + d);
    }
    for (int64_t j = 0; j < heads; ++j) gb[j] += g[j];
  }
}
void backward_row(const double* g_row, const double* ru, const double* cols, const double* w,
                  double* grad_row, double* gc, double* gw, double* gb, double* h, double* gh,
                  int64_t V, int64_t K, int64_t heads) {
  backward_row_impl(g_row, ru, cols, w, grad_row, gc, gw, gb, h, gh, V, K, heads);
}

}  // namespace

at::Tensor cpb_mlp_cpu(const at::Tensor& rows, const at::Tensor& cols, const at::Tensor& weight,
                       const at::Tensor& bias) {
  const int64_t U = rows.size(0), V = cols.size(0), K = rows.size(1), heads = weight.size(0);
  at::Tensor out = at::empty({U, V, heads}, rows.options());
  AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "cpb_mlp_cpu", [&] {
    const scalar_t *r = const_ptr<scalar_t>(rows), *c = const_ptr<scalar_t>(cols),
                   *w = const_ptr<scalar_t>(weight), *b = const_ptr<scalar_t>(bias);
    scalar_t* o = mutable_ptr<scalar_t>(out);
    at::parallel_for(0, U, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> h(K);
      for (int64_t u = begin; u < end; ++u) {
        forward_row(r + u * K, c, w, b, o + u * V * heads, h.data(), V, K, heads);
      }
    });
  });
  return out;
}

CpbMlpGrads cpb_mlp_backward_cpu(const at::Tensor& grad_out, const at::Tensor& rows,
                                 const at::Tensor& cols, const at::Tensor& weight) {
  const int64_t U = rows.size(0), V = cols.size(0), K = rows.size(1), heads = weight.size(0);
  const int64_t per_chunk = (U + kChunks - 1) / kChunks;
  const int64_t chunks = (U + per_chunk - 1) / per_chunk;
  at::Tensor grad_rows = at::zeros_like(rows);
  at::Tensor gc_part = at::zeros({chunks, V, K}, rows.options());
  at::Tensor gw_part = at::zeros({chunks, heads, K}, rows.options());
  at::Tensor gb_part = at::zeros({chunks, heads}, rows.options());
  AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "cpb_mlp_backward_cpu", [&] {
    const scalar_t *g = const_ptr<scalar_t>(grad_out), *r = const_ptr<scalar_t>(rows),
                   *c = const_ptr<scalar_t>(cols), *w = const_ptr<scalar_t>(weight);
    scalar_t* gr = mutable_ptr<scalar_t>(grad_rows);
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> h(K), gh(K);
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        scalar_t* gc = mutable_ptr<scalar_t>(gc_part) + chunk * V * K;
        scalar_t* gw = mutable_ptr<scalar_t>(gw_part) + chunk * heads * K;
        scalar_t* gb = mutable_ptr<scalar_t>(gb_part) + chunk * heads;
        for (int64_t u = chunk * per_chunk; u < std::min(U, (chunk + 1) * per_chunk); ++u) {
          backward_row(g + u * V * heads, r + u * K, c, w, gr + u * K, gc, gw, gb, h.data(),
                       gh.data(), V, K, heads);
        }
      }
    });
  });
  return {grad_rows, cpu::sum_chunks_in_order(gc_part), cpu::sum_chunks_in_order(gw_part),
          cpu::sum_chunks_in_order(gb_part)};
}

}  // namespace mmtransnext
