// CPU kernel of ConvGLU's fused gate (../conv_glu_gate.h). Channels last: every tap and the
// GELU run over a row of C contiguous channels (8 floats at a time, vec8.h).
// Forward: one task per output row; the conv's sum lives in a C-float buffer per token.
// Backward: pass 1 (fixed chunks of rows) recomputes the conv and GELU per token, writes
// grad_value and the pre-activation's gradient (kept [B, N, C]), and adds the weight and
// bias gradients into the chunk's partial sums (added in chunk order afterwards:
// deterministic, independent of the thread count); pass 2 gathers grad_gate per token from
// the pre-activation gradients of its 3 x 3 neighbours (each output written once).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "common/gelu_math.h"
#include "common/torch_version.h"
#include "conv_glu_gate.h"
#include "cpu/partial_sums.h"
#include "cpu/target_clones.h"
#include "cpu/vec8.h"

namespace mmtransnext {
namespace {

constexpr int64_t kTaps = 9;
constexpr int64_t kChunks = 16;  // backward partial sums: chunks of rows

struct Map {
  int64_t rows, W, C;  // rows of the gate map, its width, channels
};

// fn(tap, token) for the 3 x 3 taps whose token (y + S (dy - 1), x + S (dx - 1)) lies in the
// map: S = 1 the tokens that token (y, x) reads, S = -1 the tokens that read it
template <int S, typename Fn>
inline __attribute__((always_inline)) void for_each_tap(const Map& m, int64_t y, int64_t x,
                                                        Fn&& fn) {
  for (int64_t dy = 0; dy < 3; ++dy) {
    const int64_t yy = y + S * (dy - 1);
    if (yy < 0 || yy >= m.rows) continue;
    for (int64_t dx = 0; dx < 3; ++dx) {
      const int64_t xx = x + S * (dx - 1);
      if (xx < 0 || xx >= m.W) continue;
      fn(dy * 3 + dx, yy * m.W + xx);
    }
  }
}

// pre[c] = bias[c] + sum of the taps inside the map, for token (y, x) of one image
template <typename T>
inline __attribute__((always_inline)) void conv_at(const T* gate, const T* wt, const T* bias,
                                                   const Map& m, int64_t y, int64_t x,
                                                   T* pre) {
  const int64_t C = m.C;
  std::copy(bias, bias + C, pre);
  for_each_tap<1>(m, y, x, [&](int64_t tap, int64_t token) __attribute__((always_inline)) {
    const T* g = gate + token * C;
    const T* w = wt + tap * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) pre[c] += w[c] * g[c];
  });
}

// out = GELU(pre) * v over C channels
inline __attribute__((always_inline)) void gelu_mul(const float* pre, const float* v, float* out,
                                                    int64_t C) {
  int64_t c = 0;
  for (; c + 8 <= C; c += 8) {
    const cpu::f32x8 x = cpu::load8(pre + c);
    cpu::f32x8 cdf, xpdf;
    gelu_terms_from_exp(x, cpu::exp_nonpositive8(-0.5f * x * x), &cdf, &xpdf);
    cpu::store8(out + c, x * cdf * cpu::load8(v + c));
  }
  for (; c < C; ++c) {
    float cdf, xpdf;
    gelu_terms_from_exp(pre[c], exp_nonpositive(-0.5f * pre[c] * pre[c]), &cdf, &xpdf);
    out[c] = pre[c] * cdf * v[c];
  }
}

inline void gelu_mul(const double* pre, const double* v, double* out, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    double cdf, xpdf;
    gelu_terms(pre[c], &cdf, &xpdf);
    out[c] = pre[c] * cdf * v[c];
  }
}

// grad_value = go * GELU(pre); pre becomes d pre = go * v * GELU'(pre)
inline __attribute__((always_inline)) void gelu_mul_grad(float* pre, const float* go,
                                                         const float* v, float* grad_v,
                                                         int64_t C) {
  int64_t c = 0;
  for (; c + 8 <= C; c += 8) {
    const cpu::f32x8 x = cpu::load8(pre + c), g = cpu::load8(go + c);
    cpu::f32x8 cdf, xpdf;
    gelu_terms_from_exp(x, cpu::exp_nonpositive8(-0.5f * x * x), &cdf, &xpdf);
    cpu::store8(grad_v + c, g * (x * cdf));
    cpu::store8(pre + c, g * cpu::load8(v + c) * (cdf + xpdf));
  }
  for (; c < C; ++c) {
    const float x = pre[c];
    float cdf, xpdf;
    gelu_terms_from_exp(x, exp_nonpositive(-0.5f * x * x), &cdf, &xpdf);
    grad_v[c] = go[c] * (x * cdf);
    pre[c] = go[c] * v[c] * (cdf + xpdf);
  }
}

inline void gelu_mul_grad(double* pre, const double* go, const double* v, double* grad_v,
                          int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    double cdf, xpdf;
    gelu_terms(pre[c], &cdf, &xpdf);
    grad_v[c] = go[c] * (pre[c] * cdf);
    pre[c] = go[c] * v[c] * (cdf + xpdf);
  }
}

template <typename T>
inline __attribute__((always_inline)) void forward_row_impl(const T* gate, const T* value,
                                                            const T* wt, const T* bias,
                                                            const Map& m, int64_t y, T* out,
                                                            T* pre) {
  for (int64_t x = 0; x < m.W; ++x) {
    conv_at(gate, wt, bias, m, y, x, pre);
    gelu_mul(pre, value + x * m.C, out + x * m.C, m.C);
  }
}

// one row of backward pass 1; dw [kTaps, C] and db [C] are the chunk's partial sums
template <typename T>
inline __attribute__((always_inline)) void backward_row_impl(
    const T* go, const T* gate, const T* value, const T* wt, const T* bias, const Map& m,
    int64_t y, T* grad_v, T* dpre, T* dw, T* db) {
  const int64_t C = m.C;
  for (int64_t x = 0; x < m.W; ++x) {
    T* d = dpre + x * C;
    conv_at(gate, wt, bias, m, y, x, d);
    gelu_mul_grad(d, go + x * C, value + x * C, grad_v + x * C, C);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) db[c] += d[c];
    for_each_tap<1>(m, y, x, [&](int64_t tap, int64_t token) __attribute__((always_inline)) {
      const T* g = gate + token * C;
      T* w = dw + tap * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) w[c] += d[c] * g[c];
    });
  }
}

// The float row: per token, the in-map taps once; then per 16 channels the conv sums in
// registers (bias, then the taps in order, as conv_at), GELU and the product; no pre buffer.
MMTN_CLONES void forward_row(const float* gate, const float* value, const float* wt,
                             const float* bias, const Map& m, int64_t y, float* out,
                             float* pre) {
  const int64_t C = m.C;
  if (C % 16 != 0) return forward_row_impl(gate, value, wt, bias, m, y, out, pre);
  for (int64_t x = 0; x < m.W; ++x) {
    const float* src[kTaps];
    const float* w[kTaps];
    int taps = 0;
    for_each_tap<1>(m, y, x, [&](int64_t tap, int64_t token) __attribute__((always_inline)) {
      src[taps] = gate + token * C;
      w[taps++] = wt + tap * C;
    });
    const float* v = value + x * C;
    float* o = out + x * C;
    for (int64_t c = 0; c < C; c += 16) {
      cpu::f32x16 pre_c = cpu::load16(bias + c);
      for (int t = 0; t < taps; ++t) pre_c += cpu::load16(w[t] + c) * cpu::load16(src[t] + c);
      cpu::f32x16 cdf, xpdf;
      gelu_terms_from_exp(pre_c,
                          cpu::exp_nonpositive_vec<cpu::f32x16, cpu::i32x16>(-0.5f * pre_c * pre_c),
                          &cdf, &xpdf);
      cpu::store16(o + c, pre_c * cdf * cpu::load16(v + c));
    }
  }
}
void forward_row(const double* gate, const double* value, const double* wt, const double* bias,
                 const Map& m, int64_t y, double* out, double* pre) {
  forward_row_impl(gate, value, wt, bias, m, y, out, pre);
}
MMTN_CLONES void backward_row(const float* go, const float* gate, const float* value,
                              const float* wt, const float* bias, const Map& m, int64_t y,
                              float* grad_v, float* dpre, float* dw, float* db) {
  backward_row_impl(go, gate, value, wt, bias, m, y, grad_v, dpre, dw, db);
}
void backward_row(const double* go, const double* gate, const double* value, const double* wt,
                  const double* bias, const Map& m, int64_t y, double* grad_v, double* dpre,
                  double* dw, double* db) {
  backward_row_impl(go, gate, value, wt, bias, m, y, grad_v, dpre, dw, db);
}

// grad_gate of token (y, x): sum over the taps of weight * dpre of the token it feeds
template <typename T>
void gate_grad_row(const T* dpre, const T* wt, const Map& m, int64_t y, T* out) {
  const int64_t C = m.C;
  for (int64_t x = 0; x < m.W; ++x) {
    T* o = out + x * C;
    std::fill(o, o + C, T(0));
    for_each_tap<-1>(m, y, x, [&](int64_t tap, int64_t token) __attribute__((always_inline)) {
      const T* d = dpre + token * C;
      const T* w = wt + tap * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] += w[c] * d[c];
    });
  }
}

// weight [C, 1, 3, 3] as taps [9, C]
at::Tensor taps_of(const at::Tensor& weight) {
  return weight.reshape({weight.size(0), kTaps}).t().contiguous();
}

}  // namespace

at::Tensor conv_glu_gate_cpu(const at::Tensor& gate, const at::Tensor& value,
                             const at::Tensor& weight, const at::Tensor& bias, int64_t height,
                             int64_t width, int64_t row_begin, int64_t row_end) {
  const int64_t B = gate.size(0), C = gate.size(2), rows = row_end - row_begin;
  at::Tensor out = at::empty({B, rows * width, C}, gate.options());
  const at::Tensor wt = taps_of(weight);
  const Map m{height, width, C};
  AT_DISPATCH_FLOATING_TYPES(gate.scalar_type(), "conv_glu_gate_cpu", [&] {
    const scalar_t *g = const_ptr<scalar_t>(gate), *v = const_ptr<scalar_t>(value),
                   *w = const_ptr<scalar_t>(wt), *b = const_ptr<scalar_t>(bias);
    scalar_t* o = mutable_ptr<scalar_t>(out);
    at::parallel_for(0, B * rows, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> pre(C);
      for (int64_t t = begin; t < end; ++t) {
        const int64_t n = t / rows, r = t % rows;
        forward_row(g + n * height * width * C, v + (n * rows + r) * width * C, w, b, m,
                    row_begin + r, o + (n * rows + r) * width * C, pre.data());
      }
    });
  });
  return out;
}

ConvGluGateGrads conv_glu_gate_backward_cpu(const at::Tensor& grad_out, const at::Tensor& gate,
                                            const at::Tensor& value, const at::Tensor& weight,
                                            const at::Tensor& bias, int64_t height,
                                            int64_t width) {
  const int64_t B = gate.size(0), C = gate.size(2), total_rows = B * height;
  const int64_t per_chunk = (total_rows + kChunks - 1) / kChunks;
  const int64_t chunks = (total_rows + per_chunk - 1) / per_chunk;
  const at::Tensor wt = taps_of(weight);
  at::Tensor grad_value = at::empty_like(value);
  at::Tensor dpre = at::empty_like(gate);
  at::Tensor grad_gate = at::empty_like(gate);
  at::Tensor dw_part = at::zeros({chunks, kTaps, C}, gate.options());
  at::Tensor db_part = at::zeros({chunks, C}, gate.options());
  const Map m{height, width, C};
  AT_DISPATCH_FLOATING_TYPES(gate.scalar_type(), "conv_glu_gate_backward_cpu", [&] {
    const scalar_t *go = const_ptr<scalar_t>(grad_out), *g = const_ptr<scalar_t>(gate),
                   *v = const_ptr<scalar_t>(value), *w = const_ptr<scalar_t>(wt),
                   *b = const_ptr<scalar_t>(bias);
    scalar_t *gv = mutable_ptr<scalar_t>(grad_value), *d = mutable_ptr<scalar_t>(dpre),
             *gg = mutable_ptr<scalar_t>(grad_gate);
    const int64_t image = height * width * C, row = width * C;
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        scalar_t* dw = mutable_ptr<scalar_t>(dw_part) + chunk * kTaps * C;
        scalar_t* db = mutable_ptr<scalar_t>(db_part) + chunk * C;
        for (int64_t t = chunk * per_chunk; t < std::min(total_rows, (chunk + 1) * per_chunk);
             ++t) {
          const int64_t n = t / height, y = t % height, off = n * image + y * row;
          backward_row(go + off, g + n * image, v + off, w, b, m, y, gv + off, d + off, dw,
                       db);
        }
      }
    });
    at::parallel_for(0, total_rows, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t n = t / height, y = t % height;
        gate_grad_row(d + n * image, w, m, y, gg + n * image + y * row);
      }
    });
  });
  at::Tensor grad_weight = cpu::sum_chunks_in_order(dw_part).t().reshape(weight.sizes());
  return {grad_gate, grad_value, grad_weight, cpu::sum_chunks_in_order(db_part)};
}

}  // namespace mmtransnext
