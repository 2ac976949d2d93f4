// Row loops of the fused attention's pooled part (P entries per query), vectorised: the float
// versions are compiled for AVX2 + FMA and for the baseline, picked at load time
// (target_clones); the double versions are the plain element math of
// ../common/aggregated_attention_math.h (the float ones call the same helpers).
#pragma once

#include <cstdint>

#include "common/aggregated_attention_math.h"

namespace mmtransnext {
namespace cpu {

float add_max(float* s, const float* bias, int64_t n, float m);  // s += bias; max(m, s)
float exp_sum(float* v, int64_t n, float shift);                 // v = exp(v - shift); sum
void scale(float* v, int64_t n, float c);                        // v *= c
float row_dot(const float* a, const float* b, int64_t n);        // a . b
void softmax_grad(const float* a, float* da, int64_t n, float D);
void add(float* dst, const float* src, int64_t n);               // dst += src

inline double add_max(double* s, const double* bias, int64_t n, double m) {
  for (int64_t i = 0; i < n; ++i) {
    s[i] += bias[i];
    m = s[i] > m ? s[i] : m;
  }
  return m;
}
inline double exp_sum(double* v, int64_t n, double shift) { return exp_shift(v, n, shift); }
inline void scale(double* v, int64_t n, double c) {
  for (int64_t i = 0; i < n; ++i) v[i] *= c;
}
inline double row_dot(const double* a, const double* b, int64_t n) {
  return mmtransnext::row_dot(a, b, n);
}
inline void softmax_grad(const double* a, double* da, int64_t n, double D) {
  mmtransnext::softmax_grad(a, da, n, D);
}
inline void add(double* dst, const double* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace cpu
}  // namespace mmtransnext
