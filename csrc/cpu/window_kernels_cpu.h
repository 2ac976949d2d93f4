// Window primitives shared by the CPU kernels (sliding_window_cpu.cpp and
// aggregated_attention_cpu.cpp). Element math from ../common/window_geometry.h.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>  // at::internal::GRAIN_SIZE

#include <algorithm>
#include <vector>

#include "common/window_geometry.h"

namespace mmtransnext {
namespace cpu {

// Items (image rows, heads, query blocks) per parallel_for chunk, from the work of one item:
// small problems run inline, without the cost of waking the thread pool.
inline int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(1, work_per_item));
}

// kTranspose false: out[p] = sum_j w[p, j] * x[p + o_j]
// kTranspose true:  out[p] = sum_j w[p - o_j, j] * x[p - o_j]   (the adjoint, as a gather)
// w: [BH, N, k*k], x and out: [BH, N, d]. Every output row is written by one task: no
// atomics, results independent of the thread count.
template <typename w_t, typename x_t, typename out_t, bool kTranspose>
void window_sum(const w_t* w, const x_t* xs, out_t* out, int64_t BH, int64_t d,
                const Geometry& g) {
  using acc_t = at::opmath_type<x_t>;
  at::parallel_for(0, BH * g.H, grain_for(g.W * g.nk * d), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc_buf(d);
    acc_t* __restrict__ acc = acc_buf.data();
    for (int64_t row = begin; row < end; ++row) {
      const int64_t bh = row / g.H, y = row % g.H;
      const int64_t base = bh * g.N;
      for (int64_t x = 0; x < g.W; ++x) {
        const int64_t p = y * g.W + x;
        std::fill(acc, acc + d, acc_t(0));
        for (int64_t j = 0; j < g.nk; ++j) {
          int64_t n;
          if (!window_neighbour<kTranspose>(g, y, x, j, &n)) continue;
          axpy(acc_t(w[(base + (kTranspose ? n : p)) * g.nk + j]), xs + (base + n) * d, acc, d);
        }
        out_t* __restrict__ orow = out + (base + p) * d;
        for (int64_t c = 0; c < d; ++c) orow[c] = out_t(acc[c]);
      }
    }
  });
}

}  // namespace cpu
}  // namespace mmtransnext
