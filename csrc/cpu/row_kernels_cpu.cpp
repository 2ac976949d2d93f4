// Float row loops of the fused attention (see row_kernels_cpu.h). `omp simd` lets the
// compiler vectorise the reductions (a fixed reassociation: still deterministic).
// The 8-float vector helpers below (and exp_reduced on them) are always inlined into the
// clones: GCC's warning about passing 32-byte vectors without AVX concerns no real call.
#pragma GCC diagnostic ignored "-Wpsabi"

#include "cpu/row_kernels_cpu.h"

#include <cstring>

#include "cpu/target_clones.h"

namespace mmtransnext {
namespace cpu {

MMTN_CLONES float add_max(float* s, const float* bias, int64_t n, float m) {
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) {
    s[i] += bias[i];
    m = s[i] > m ? s[i] : m;
  }
  return m;
}

namespace {

// exp_nonpositive (../common/aggregated_attention_math.h) on 8 floats at once, in GCC's
// generic vector types: the same exp_reduced, lowered to AVX2 in the
// x86-64-v3 clone and to SSE pairs in the default one. (GCC does not auto-vectorise the
// scalar loop: it turns the underflow select into a branch.)
typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));

inline __attribute__((always_inline)) f32x8 exp_nonpositive8(f32x8 x) {
  const f32x8 zero = {}, one = zero + 1.0f, k_min = zero + kExpMin;
  const i32x8 under = x < k_min;  // false for NaN: it reaches p and the product
  f32x8 n;
  const f32x8 p = exp_reduced(under ? k_min : x, &n);
  const f32x8 scale = (f32x8)((__builtin_convertvector(n, i32x8) + 127) << 23);
  return p * scale * (under ? zero : one);
}

}  // namespace

MMTN_CLONES float exp_sum(float* v, int64_t n, float shift) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f32x8 x;
    std::memcpy(&x, v + i, sizeof(x));
    x = exp_nonpositive8(x - shift);
    std::memcpy(v + i, &x, sizeof(x));
  }
  for (; i < n; ++i) v[i] = exp_nonpositive(v[i] - shift);
  return sum(v, n);
}

MMTN_CLONES void scale(float* v, int64_t n, float c) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) v[i] *= c;
}

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

}  // namespace cpu
}  // namespace mmtransnext
