// 8 (and 16) floats at once in GCC's generic vector types (lowered to AVX-512 / AVX2 in the
// clones of target_clones.h, to SSE in the default ones), and the element math on them that
// GCC does not auto-vectorise from the scalar loops (it turns selects into branches).
#pragma once
#pragma GCC diagnostic ignored "-Wpsabi"  // always inlined: no 32-byte vector crosses a call

#include <cstdint>
#include <cstring>

#include "common/aggregated_attention_math.h"

namespace mmtransnext {
namespace cpu {

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));

// unaligned loads and stores of a vector V of floats
template <typename V>
inline __attribute__((always_inline)) V load_vec(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename V>
inline __attribute__((always_inline)) void store_vec(float* p, V v) {
  std::memcpy(p, &v, sizeof(v));
}

inline __attribute__((always_inline)) f32x8 load8(const float* p) { return load_vec<f32x8>(p); }
inline __attribute__((always_inline)) f32x16 load16(const float* p) {
  return load_vec<f32x16>(p);
}
inline __attribute__((always_inline)) void store8(float* p, f32x8 v) { store_vec(p, v); }
inline __attribute__((always_inline)) void store16(float* p, f32x16 v) { store_vec(p, v); }

// exp_nonpositive (../common/aggregated_attention_math.h) on a vector F of floats (I: the
// matching int32 vector): the same exp_reduced.
template <typename F, typename I>
inline __attribute__((always_inline)) F exp_nonpositive_vec(F x) {
  const F zero = {}, one = zero + 1.0f, k_min = zero + kExpMin;
  const I under = x < k_min;  // false for NaN: it reaches p and the product
  F n;
  const F p = exp_reduced(under ? k_min : x, &n);
  const F scale = (F)((__builtin_convertvector(n, I) + 127) << 23);
  return p * scale * (under ? zero : one);
}

inline __attribute__((always_inline)) f32x8 exp_nonpositive8(f32x8 x) {
  return exp_nonpositive_vec<f32x8, i32x8>(x);
}

// max of v[0, n), 16 floats at a time (one horizontal reduction at the end); -inf for n = 0.
inline __attribute__((always_inline)) float max16(const float* v, int64_t n) {
  f32x16 m = f32x16{} + neg_inf<float>();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f32x16 x = load16(v + i);
    m = x > m ? x : m;
  }
  float r = neg_inf<float>();
  for (int l = 0; l < 16; ++l) r = m[l] > r ? m[l] : r;
  for (; i < n; ++i) r = v[i] > r ? v[i] : r;
  return r;
}

// v[i] <- exp(v[i] - shift), 16 floats at a time; returns the sum (16 lane sums added in
// lane order, then the tail: a fixed order).
inline __attribute__((always_inline)) float exp_sum16(float* v, int64_t n, float shift) {
  f32x16 acc = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f32x16 x = exp_nonpositive_vec<f32x16, i32x16>(load16(v + i) - shift);
    acc += x;
    store16(v + i, x);
  }
  float total = 0.f;
  for (int l = 0; l < 16; ++l) total += acc[l];
  for (; i < n; ++i) {
    v[i] = exp_nonpositive(v[i] - shift);
    total += v[i];
  }
  return total;
}

}  // namespace cpu
}  // namespace mmtransnext
