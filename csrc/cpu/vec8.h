// 8 floats at once in GCC's generic vector types (lowered to AVX2 in the x86-64-v3 clones of
// target_clones.h, to SSE pairs in the default ones), and the element math on them that
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

inline __attribute__((always_inline)) f32x8 load8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline __attribute__((always_inline)) void store8(float* p, f32x8 v) {
  std::memcpy(p, &v, sizeof(v));
}

// exp_nonpositive (../common/aggregated_attention_math.h) on 8 floats: the same exp_reduced.
inline __attribute__((always_inline)) f32x8 exp_nonpositive8(f32x8 x) {
  const f32x8 zero = {}, one = zero + 1.0f, k_min = zero + kExpMin;
  const i32x8 under = x < k_min;  // false for NaN: it reaches p and the product
  f32x8 n;
  const f32x8 p = exp_reduced(under ? k_min : x, &n);
  const f32x8 scale = (f32x8)((__builtin_convertvector(n, i32x8) + 127) << 23);
  return p * scale * (under ? zero : one);
}

}  // namespace cpu
}  // namespace mmtransnext
