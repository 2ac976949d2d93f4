// Per-query element math of the fused aggregated attention (forward and backward), for the
// CPU kernel (csrc/cpu/aggregated_attention_cpu.cpp) and any GPU kernel built on it.
//
// For query p = (y, x) of one (batch, head):
//   l_j = qs . kn[p + o_j] + rpb[j]        (window logits, -inf outside the image)
//   s_m = qs . kp[m] + bias[p, m]          (pooled logits, m < P; bias from the row table:
//                                           add_pooled_bias)
//   (a, b) = softmax over the k*k + P logits (lse = log-sum-exp, kept for backward)
//   w_j = a_j + q . lt[:, j] + lb[j]       (learnable term: unscaled normalised q)
//   out = sum_j w_j v[p + o_j] + sum_m b_m vp[m]
// The pooled products (s and b @ vp) are matmuls of a block of queries and run through BLAS
// in the callers; these helpers do the rest of the row.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "window_geometry.h"

namespace mmtransnext {

template <typename acc_t>
HOST_DEVICE_INLINE acc_t neg_inf() {
  return -std::numeric_limits<acc_t>::infinity();
}

// 2^i as a float, -126 <= i <= 127, from its bits. A bit cast, not memcpy: GCC does not
// vectorise loops with the memcpy (exp_sum ran scalar, 24 % of the fused forward).
HOST_DEVICE_INLINE float pow2i(int i) {
  const uint32_t bits = static_cast<uint32_t>(i + 127) << 23;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  return __builtin_bit_cast(float, bits);
#endif
}

// Sum of n values with 8 independent partial sums (vectorisable, fixed order).
template <typename acc_t>
HOST_DEVICE_INLINE acc_t sum(const acc_t* v, int64_t n) {
  acc_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) s[l] += v[i + l];
  }
  acc_t t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; i < n; ++i) t += v[i];
  return t;
}

// Window logits l[j] (-inf outside); returns their max (finite: the centre is inside).
template <typename acc_t, typename scalar_t>
HOST_DEVICE_INLINE acc_t window_logits(const Geometry& g, int64_t y, int64_t x,
                                       const scalar_t* qs, const scalar_t* kn,
                                       const scalar_t* rpb, int64_t d, acc_t* l) {
  acc_t m = neg_inf<acc_t>();
  for (int64_t j = 0; j < g.nk; ++j) {
    int64_t n;
    if (!window_neighbour(g, y, x, j, &n)) {
      l[j] = neg_inf<acc_t>();
      continue;
    }
    l[j] = dot<acc_t>(qs, kn + n * d, d) + acc_t(rpb[j]);
    m = l[j] > m ? l[j] : m;
  }
  return m;
}

// exp(x) for x <= 0 (and NaN) in float, by range reduction x = n ln2 + r, |r| <= ln2 / 2, and
// a degree-7 polynomial for exp(r) (the classic minimax coefficients; about 1 ulp). Plain
// arithmetic without branches or calls, so that loops over rows auto-vectorise on the CPU
// (std::exp is a scalar libm call there). x < -87.3 (exp underflows) gives 0; NaN stays NaN
// (it reaches p; the mask multiplies NaN by 0).
constexpr float kExpMin = -87.33654f;

// The arithmetic of exp_nonpositive from the clamped xc: the polynomial p ~ exp(r) and n, with
// exp(xc) = p * 2^n. T is float here and a GCC vector of floats in the CPU's vectorised row
// loop (csrc/cpu/row_kernels_cpu.cpp), so both run the same operations.
template <typename T>
HOST_DEVICE_INLINE T exp_reduced(T xc, T* n_out) {
  const T t = xc * 1.44269504088896341f;
  const T n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (|t| < 2^22)
  const T r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  T p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  *n_out = n;
  return p * r * r + r + 1.0f;
}

HOST_DEVICE_INLINE float exp_nonpositive(float x) {
  constexpr float kMin = kExpMin;
  float n;
  const float p = exp_reduced(x < kMin ? kMin : x, &n);
  return p * pow2i(static_cast<int>(n)) * static_cast<float>(!(x < kMin));
}

// v[i] <- exp(v[i] - shift); returns the sum (exp(-inf) = 0 for outside positions).
template <typename acc_t>
HOST_DEVICE_INLINE acc_t exp_shift(acc_t* v, int64_t n, acc_t shift) {
  for (int64_t i = 0; i < n; ++i) v[i] = std::exp(v[i] - shift);
  return sum(v, n);
}

template <>
HOST_DEVICE_INLINE float exp_shift<float>(float* v, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) v[i] = exp_nonpositive(v[i] - shift);
  return sum(v, n);
}

// Adds the pooled bias of query (y, x) against all P = Hk * Wk pooled keys, read in place from
// one head's row table (mmtransnext/ops/bias_rows.py): s[ky * Wk + kx] += table[rows[y * Hk
// + ky] * row_len + x * Wk + kx], row_len = W * Wk.
template <typename acc_t, typename scalar_t>
HOST_DEVICE_INLINE void add_pooled_bias(acc_t* s, const scalar_t* table, const int64_t* rows,
                                        int64_t y, int64_t x, int64_t Hk, int64_t Wk,
                                        int64_t row_len) {
  for (int64_t ky = 0; ky < Hk; ++ky) {
    const scalar_t* __restrict__ src = table + rows[y * Hk + ky] * row_len + x * Wk;
    acc_t* __restrict__ dst = s + ky * Wk;
    for (int64_t kx = 0; kx < Wk; ++kx) dst[kx] += acc_t(src[kx]);
  }
}

// Its adjoint: grad_table[rows[y * Hk + ky] * row_len + x * Wk + kx] += grad[ky * Wk + kx].
template <typename acc_t>
HOST_DEVICE_INLINE void pooled_bias_row_grad(const acc_t* grad, const int64_t* rows, int64_t y,
                                             int64_t x, int64_t Hk, int64_t Wk, int64_t row_len,
                                             acc_t* grad_table) {
  for (int64_t ky = 0; ky < Hk; ++ky) {
    acc_t* dst = grad_table + rows[y * Hk + ky] * row_len + x * Wk;
    for (int64_t kx = 0; kx < Wk; ++kx) dst[kx] += grad[ky * Wk + kx];
  }
}

// Learnable window weight q . lt_t[j] + lb[j] (lt_t: [k*k, d], the transposed tokens).
template <typename acc_t, typename scalar_t>
HOST_DEVICE_INLINE acc_t learnable_weight(const scalar_t* q, const acc_t* lt_t,
                                          const acc_t* lb, int64_t j, int64_t d) {
  return dot<acc_t>(q, lt_t + j * d, d) + lb[j];
}

// All learnable window weights of a query at once: out[j] = q . lt[:, j] + lb[j] for
// j < stride, from the tokens in their [d, k*k] layout zero-padded to rows of `stride` (a
// multiple of 16; lb padded alike), so that the loop runs over whole vectors of j.
template <typename acc_t, typename scalar_t>
HOST_DEVICE_INLINE void learnable_weights(const scalar_t* q, const acc_t* lt, const acc_t* lb,
                                          int64_t stride, int64_t d, acc_t* __restrict__ out) {
  constexpr int64_t kStep = 16;  // stride is a multiple of 16 on the CPU
  for (int64_t j0 = 0; j0 < stride; j0 += kStep) {
    acc_t o[kStep];
    for (int64_t j = 0; j < kStep; ++j) o[j] = lb[j0 + j];
    for (int64_t c = 0; c < d; ++c) {
      const acc_t qc = acc_t(q[c]);
      const acc_t* __restrict__ row = lt + c * stride + j0;
      for (int64_t j = 0; j < kStep; ++j) o[j] += qc * row[j];
    }
    for (int64_t j = 0; j < kStep; ++j) out[j0 + j] = o[j];
  }
}

// acc += sum_j (a[j] + lw[j]) v[p + o_j] over inside j (lw: the learnable weights); w[j]
// gets the total weight (0 outside, where v is zero).
template <typename acc_t, typename scalar_t>
HOST_DEVICE_INLINE void window_output(const Geometry& g, int64_t y, int64_t x,
                                      const acc_t* a, const acc_t* lw, const scalar_t* v,
                                      int64_t d, acc_t* w, acc_t* acc) {
  for (int64_t j = 0; j < g.nk; ++j) {
    int64_t n;
    if (!window_neighbour(g, y, x, j, &n)) {
      w[j] = 0;
      continue;
    }
    w[j] = a[j] + lw[j];
    axpy(w[j], v + n * d, acc, d);
  }
}

// Softmax backward of one part of a row, in place: da_i <- a_i (da_i - D), where
// D = sum_k a_k da_k over BOTH parts (window and pooled) of the row.
template <typename acc_t>
HOST_DEVICE_INLINE void softmax_grad(const acc_t* a, acc_t* da, int64_t n, acc_t D) {
  for (int64_t i = 0; i < n; ++i) da[i] = a[i] * (da[i] - D);
}

// sum_i a_i b_i over contiguous rows (the D of softmax_grad), fixed order.
template <typename acc_t>
HOST_DEVICE_INLINE acc_t row_dot(const acc_t* a, const acc_t* b, int64_t n) {
  return dot<acc_t>(a, b, n);
}

}  // namespace mmtransnext
