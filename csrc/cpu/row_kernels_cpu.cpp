// Float row loops of the fused attention (see row_kernels_cpu.h). `omp simd` lets the
// compiler vectorise the reductions (a fixed reassociation: still deterministic); exp runs
// on the 8-float vectors of vec8.h.

#include "cpu/row_kernels_cpu.h"

#include <cmath>
#include <cstring>

#include "cpu/target_clones.h"
#include "cpu/vec8.h"

namespace mmtransnext {
namespace cpu {

MMTN_CLONES float exp_sum(float* v, int64_t n, float shift) { return exp_sum16(v, n, shift); }

MMTN_CLONES float row_dot(const float* a, const float* b, int64_t n) {
  float total = 0.f;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < n; ++i) total += a[i] * b[i];
  return total;
}

MMTN_CLONES void softmax_grad(const float* a, float* da, int64_t n, float D) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) da[i] = a[i] * (da[i] - D);
}

MMTN_CLONES void add(float* dst, const float* src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

namespace {

inline __attribute__((always_inline)) float row_exp_sum(float* v, int64_t n, float shift) {
  return exp_sum16(v, n, shift);
}
inline double row_exp_sum(double* v, int64_t n, double shift) { return exp_shift(v, n, shift); }
inline __attribute__((always_inline)) float row_max(const float* v, int64_t n) {
  return max16(v, n);
}
inline double row_max(const double* v, int64_t n) {
  double m = neg_inf<double>();
  for (int64_t i = 0; i < n; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

template <typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) acc_t forward_row_impl(
    const AttentionRowInputs<scalar_t>& r, int64_t n, acc_t* logits, acc_t* out, acc_t* inv,
    acc_t* w) {
  const Geometry& g = r.g;
  const int64_t y = n / g.W, x = n % g.W, d = r.d;
  window_logits<acc_t>(g, y, x, r.qs + n * d, r.kn, r.rpb, d, logits);
  for (int64_t j = g.nk; j < r.win; ++j) logits[j] = neg_inf<acc_t>();
  add_pooled_bias(logits + r.win, r.table, r.rows, y, x, r.Hk, r.Wk, r.row_len);
  const acc_t m = row_max(logits, r.win + r.P);
  const acc_t sum = row_exp_sum(logits, r.win + r.P, m);
  *inv = acc_t(1) / sum;
  for (int64_t j = 0; j < g.nk; ++j) logits[j] *= *inv;
  for (int64_t c = 0; c < d; ++c) out[c] = acc_t(0);
  acc_t* lw = w + r.win;
  learnable_weights(r.q + n * d, r.lt, r.lb, r.win, d, lw);
  window_output(g, y, x, logits, lw, r.v, d, w, out);
  return m + std::log(sum);
}

}  // namespace

MMTN_CLONES float forward_row(const AttentionRowInputs<float>& r, int64_t n, float* logits,
                              float* out, float* inv, float* w) {
  return forward_row_impl(r, n, logits, out, inv, w);
}

double forward_row(const AttentionRowInputs<double>& r, int64_t n, double* logits,
                   double* out, double* inv, double* w) {
  return forward_row_impl(r, n, logits, out, inv, w);
}

}  // namespace cpu
}  // namespace mmtransnext
