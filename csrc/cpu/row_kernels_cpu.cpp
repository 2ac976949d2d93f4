// Float row loops of the fused attention (see row_kernels_cpu.h). `omp simd` lets the
// compiler vectorise the reductions (a fixed reassociation: still deterministic); exp runs
// on the 8-float vectors of vec8.h.

#include "cpu/row_kernels_cpu.h"

#include <cstring>

#include "cpu/target_clones.h"
#include "cpu/vec8.h"

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

MMTN_CLONES float exp_sum(float* v, int64_t n, float shift) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(v + i, exp_nonpositive8(load8(v + i) - shift));
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
