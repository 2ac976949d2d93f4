// Per-query element math of the fused aggregated attention (forward and backward), for the
// CPU kernel (csrc/cpu/aggregated_attention_cpu.cpp) and any GPU kernel built on it.
//
// For query p = (y, x) of one (batch, head):
//   l_j = qs . kn[p + o_j] + rpb[j]        (window logits, -inf outside the image)
//   s_m = qs . kp[m] + pos_bias[p, m]      (pooled logits, m < P)
//   (a, b) = softmax over the k*k + P logits (lse = log-sum-exp, kept for backward)
//   w_j = a_j + q . lt[:, j] + lb[j]       (learnable term: unscaled normalised q)
//   out = sum_j w_j v[p + o_j] + sum_m b_m vp[m]
// The pooled products (s and b @ vp) are matmuls of a block of queries and run through BLAS
// in the callers; these helpers do the rest of the row.
#pragma once

#include <cmath>
#include <limits>

#include "window_geometry.h"

namespace mmtransnext {

template <typename acc_t>
HOST_DEVICE_INLINE acc_t neg_inf() {
  return -std::numeric_limits<acc_t>::infinity();
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

// v[i] <- exp(v[i] - shift); returns the sum (exp(-inf) = 0 for outside positions).
template <typename acc_t>
HOST_DEVICE_INLINE acc_t exp_shift(acc_t* v, int64_t n, acc_t shift) {
  acc_t s = 0;
  for (int64_t i = 0; i < n; ++i) {
    v[i] = std::exp(v[i] - shift);
    s += v[i];
  }
  return s;
}

// Learnable window weight q . lt_t[j] + lb[j] (lt_t: [k*k, d], the transposed tokens).
template <typename acc_t, typename scalar_t>
HOST_DEVICE_INLINE acc_t learnable_weight(const scalar_t* q, const acc_t* lt_t,
                                          const acc_t* lb, int64_t j, int64_t d) {
  return dot<acc_t>(q, lt_t + j * d, d) + lb[j];
}

// acc += sum_j (a[j] + learnable_j) v[p + o_j] over inside j; w[j] gets the total weight
// (0 outside, where v is zero).
template <typename acc_t, typename scalar_t>
HOST_DEVICE_INLINE void window_output(const Geometry& g, int64_t y, int64_t x,
                                      const acc_t* a, const scalar_t* q, const acc_t* lt_t,
                                      const acc_t* lb, const scalar_t* v, int64_t d, acc_t* w,
                                      acc_t* acc) {
  for (int64_t j = 0; j < g.nk; ++j) {
    int64_t n;
    if (!window_neighbour(g, y, x, j, &n)) {
      w[j] = 0;
      continue;
    }
    w[j] = a[j] + learnable_weight<acc_t>(q, lt_t, lb, j, d);
    axpy(w[j], v + n * d, acc, d);
  }
}

// Backward of one row. In: a (window probs), dw[j] = dO . v[p + o_j] (0 outside),
// b (pooled probs), db[m] = dO . vp[m]. Out: dl (window logit grads) and db overwritten by
// the pooled logit grads: softmax backward g_i = a_i (dA_i - sum_k a_k dA_k) over both parts.
template <typename acc_t>
HOST_DEVICE_INLINE void softmax_backward(const acc_t* a, const acc_t* dw, acc_t* dl,
                                         int64_t nk, const acc_t* b, acc_t* db, int64_t P) {
  acc_t D = 0;
  for (int64_t j = 0; j < nk; ++j) D += a[j] * dw[j];
  for (int64_t m = 0; m < P; ++m) D += b[m] * db[m];
  for (int64_t j = 0; j < nk; ++j) dl[j] = a[j] * (dw[j] - D);
  for (int64_t m = 0; m < P; ++m) db[m] = b[m] * (db[m] - D);
}

}  // namespace mmtransnext
