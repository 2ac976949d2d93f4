// Partial sums of fixed chunks, added in chunk order: the deterministic reductions of the CPU
// backward kernels (the chunks depend on the sizes only, never on the thread count).
#pragma once

#include <ATen/ATen.h>

namespace mmtransnext {
namespace cpu {

// part [chunks, ...] -> [...]: part[0] + part[1] + ... in that order
inline at::Tensor sum_chunks_in_order(const at::Tensor& part) {
  at::Tensor out = part.select(0, 0).clone();
  for (int64_t c = 1; c < part.size(0); ++c) out.add_(part.select(0, c));
  return out;
}

}  // namespace cpu
}  // namespace mmtransnext
