// Row loops of the fused attention's pooled part (P entries per query), vectorised: the float
// versions are compiled for AVX-512, for AVX2 + FMA and for the baseline, picked at load
// time (target_clones); the double versions are the plain element math of
// ../common/aggregated_attention_math.h (the float ones call the same helpers).
#pragma once

#include <ATen/OpMathType.h>

#include <cstdint>

#include "common/aggregated_attention_math.h"

namespace mmtransnext {
namespace cpu {

float exp_sum(float* v, int64_t n, float shift);                 // v = exp(v - shift); sum
float row_dot(const float* a, const float* b, int64_t n);        // a . b
void softmax_grad(const float* a, float* da, int64_t n, float D);
void add(float* dst, const float* src, int64_t n);               // dst += src

inline double exp_sum(double* v, int64_t n, double shift) { return exp_shift(v, n, shift); }
inline double row_dot(const double* a, const double* b, int64_t n) {
  return mmtransnext::row_dot(a, b, n);
}
inline void softmax_grad(const double* a, double* da, int64_t n, double D) {
  mmtransnext::softmax_grad(a, da, n, D);
}
inline void add(double* dst, const double* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// One (batch, head) of the fused forward, as one query row reads it.
template <typename scalar_t>
struct AttentionRowInputs {
  using acc_t = at::opmath_type<scalar_t>;
  Geometry g;
  int64_t d, P, win;                // win: window slots at the front of a logit row
  const scalar_t *qs, *q, *kn, *v;  // [N, d]
  const scalar_t* rpb;              // [k*k]
  const scalar_t* table;            // this head's bias rows [R, row_len] (add_pooled_bias)
  const int64_t* rows;
  int64_t Hk, Wk, row_len;
  const acc_t *lt, *lb;             // [d, win] and [win]: learnable tokens and bias, 0-padded
};

// Window slots at the front of a logit row: k*k rounded up to whole 16-float vectors.
inline int64_t window_slots(int64_t nk) { return (nk + 15) / 16 * 16; }

// One query row of the forward. logits [win + P] holds the pooled products qs . kp at
// [win, win + P) on entry; the row is completed (window logits at [0, k*k), -inf up to win,
// pooled bias added), exponentiated in one pass and left unnormalised; out [d] gets the
// window's part of the output. Returns the log-sum-exp; *inv = 1 / sum, the factor of the
// pooled part (unnormalised row @ pooled values) the caller adds. w: 2 * win scratch.
float forward_row(const AttentionRowInputs<float>& r, int64_t n, float* logits, float* out,
                  float* inv, float* w);
double forward_row(const AttentionRowInputs<double>& r, int64_t n, double* logits, double* out,
                   double* inv, double* w);

}  // namespace cpu
}  // namespace mmtransnext
