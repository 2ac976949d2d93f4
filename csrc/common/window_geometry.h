// Geometry of a k x k sliding window on an H x W token map (row-major tokens, N = H*W):
// offsets o_j = (j / k - k / 2, j % k - k / 2), j = 0 .. k*k - 1. The one copy of the
// neighbour index and inside-the-image rules, for the CPU and the CUDA kernels.
#pragma once

#include <cstdint>

#include "mmtn_common.h"

namespace mmtransnext {

struct Geometry {
  int64_t H, W, ks, r, nk, N;
};

HOST_DEVICE_INLINE Geometry make_geometry(int64_t height, int64_t width, int64_t kernel_size) {
  return {height, width, kernel_size, kernel_size / 2, kernel_size * kernel_size,
          height * width};
}

// Token p + o_j (kTranspose false) or p - o_j (true) of query (y, x): its index in *n,
// false if it lies outside the image.
template <bool kTranspose = false>
HOST_DEVICE_INLINE bool window_neighbour(const Geometry& g, int64_t y, int64_t x, int64_t j,
                                         int64_t* n) {
  const int64_t dy = j / g.ks - g.r, dx = j % g.ks - g.r;
  const int64_t ny = kTranspose ? y - dy : y + dy, nx = kTranspose ? x - dx : x + dx;
  if (ny < 0 || ny >= g.H || nx < 0 || nx >= g.W) return false;
  *n = ny * g.W + nx;
  return true;
}

// a . b over n contiguous elements, accumulated in acc_t. Eight independent partial sums so
// that the CPU compiler vectorises it (on the GPU the loop runs per thread or per lane).
template <typename acc_t, typename a_t, typename b_t>
HOST_DEVICE_INLINE acc_t dot(const a_t* __restrict__ a, const b_t* __restrict__ b,
                             int64_t n) {
  acc_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    for (int l = 0; l < 8; ++l) s[l] += acc_t(a[c + l]) * acc_t(b[c + l]);
  }
  acc_t t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; c < n; ++c) t += acc_t(a[c]) * acc_t(b[c]);
  return t;
}

// acc[c] += w * x[c], c < n.
template <typename acc_t, typename x_t>
HOST_DEVICE_INLINE void axpy(acc_t w, const x_t* __restrict__ x, acc_t* __restrict__ acc,
                             int64_t n) {
  for (int64_t c = 0; c < n; ++c) acc[c] += w * acc_t(x[c]);
}

}  // namespace mmtransnext
