// GELU in its erf form, x * Phi(x), and its derivative Phi(x) + x phi(x), from one exp:
// e = exp(-x^2 / 2) gives both phi and the erf of Abramowitz & Stegun 7.1.26
// (erf(a) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-a^2), t = 1 / (1 + p a),
// a >= 0, |error| <= 1.5e-7). T is float or a GCC vector of floats (the CPU's vectorised
// rows); `exp_nonpositive` is the caller's for its T. Double uses std::erf / std::exp.
#pragma once

#include <cmath>

#include "mmtn_common.h"

namespace mmtransnext {

// *cdf = Phi(x), *xpdf = x phi(x), given e = exp(-x^2 / 2)
template <typename T>
HOST_DEVICE_INLINE void gelu_terms_from_exp(T x, T e, T* cdf, T* xpdf) {
  const T zero = x - x;  // 0 in T (NaN for NaN x, which then propagates)
  const T u = x * 0.70710678118654752f;
  const T a = u < zero ? -u : u;
  const T t = 1.0f / (1.0f + 0.3275911f * a);
  const T poly = t * (0.254829592f +
                      t * (-0.284496736f + t * (1.421413741f +
                                                t * (-1.453152027f + t * 1.061405429f))));
  const T erf_a = 1.0f - poly * e;
  *cdf = 0.5f + 0.5f * (u < zero ? -erf_a : erf_a);
  *xpdf = x * 0.39894228040143268f * e;
}

HOST_DEVICE_INLINE void gelu_terms(double x, double* cdf, double* xpdf) {
  *cdf = 0.5 * (1.0 + std::erf(x * 0.70710678118654752));
  *xpdf = x * 0.39894228040143268 * std::exp(-0.5 * x * x);
}

}  // namespace mmtransnext
