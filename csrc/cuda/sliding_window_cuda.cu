// CUDA kernels of the sliding-window ops (see ../sliding_window.h for the math).
//
//   window_dot   (qk forward, av backward's grad_attn): 8 lanes of a warp per query; the
//                lanes split head_dim (coalesced loads), then a shuffle reduction.
//   window_sum   (av forward, grad_q, grad_k, grad_v): one thread per (query, channel):
//                channels are the fastest index, so loads and stores are coalesced and each
//                output is written once (the adjoint is computed as a gather: no atomics).
//   rpb gradient: per-block partial sums over fixed chunks of (batch, token) with a
//                fixed-order shared-memory tree, then one thread per (head, j) adds the
//                partials in order. No atomics: bitwise deterministic.
// fp32, fp64, fp16 and bf16 inputs; accumulation in at::opmath_type (fp32 for 16-bit types).
// Neighbour indices and inside-the-image tests: ../common/window_geometry.h (HOST_DEVICE,
// the same code the CPU kernels run).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <limits>

#include "common/torch_version.h"
#include "common/window_geometry.h"
#include "sliding_window.h"

namespace mmtransnext {
namespace {

constexpr int kThreads = 256;
constexpr int kLanes = 8;            // lanes per query in window_dot (divides 32)
constexpr int64_t kRpbChunk = 4096;  // (batch, token) items per partial sum of the rpb grad
constexpr int64_t kMaxBlocks = 1 << 20;

int64_t num_blocks(int64_t threads_needed) {
  return std::max<int64_t>(1, std::min<int64_t>((threads_needed + kThreads - 1) / kThreads,
                                                kMaxBlocks));
}

// out[p, j] = a[p] . b[p + o_j] (+ bias[head, j]); `fill` outside.
template <typename scalar_t, typename acc_t>
__global__ void window_dot_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                  const scalar_t* __restrict__ bias, scalar_t* __restrict__ out,
                                  int64_t queries, int64_t heads, int64_t d, Geometry g,
                                  acc_t fill) {
  const int lane = threadIdx.x % kLanes;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x / kLanes;
  int64_t query = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kLanes;
  // Every lane of a warp runs the same number of iterations (the shuffles need all 32):
  // blockDim.x and the stride are multiples of 32, so a warp's queries end together.
  const int64_t first_of_warp = query - (threadIdx.x % 32) / kLanes;
  for (int64_t wq = first_of_warp; wq < queries; wq += stride, query += stride) {
    const bool active = query < queries;
    const int64_t qi = active ? query : 0;
    const int64_t bh = qi / g.N, p = qi % g.N;
    const int64_t y = p / g.W, x = p % g.W;
    const scalar_t* ap = a + qi * d;
    const scalar_t* bias_h = bias ? bias + (bh % heads) * g.nk : nullptr;
    for (int64_t j = 0; j < g.nk; ++j) {
      int64_t n = 0;
      const bool inside = active && window_neighbour(g, y, x, j, &n);
      acc_t s = 0;
      if (inside) {
        const scalar_t* bp = b + (bh * g.N + n) * d;
        for (int64_t c = lane; c < d; c += kLanes) s += acc_t(ap[c]) * acc_t(bp[c]);
      }
#pragma unroll
      for (int off = kLanes / 2; off > 0; off >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, off, kLanes);
      if (active && lane == j % kLanes) {
        if (inside && bias_h) s += acc_t(bias_h[j]);
        out[qi * g.nk + j] = static_cast<scalar_t>(inside ? s : fill);
      }
    }
  }
}

// kTranspose false: out[p, c] = sum_j w[p, j] * x[p + o_j, c]
// kTranspose true:  out[p, c] = sum_j w[p - o_j, j] * x[p - o_j, c]
template <typename scalar_t, typename acc_t, bool kTranspose>
__global__ void window_sum_kernel(const scalar_t* __restrict__ w, const scalar_t* __restrict__ xs,
                                  scalar_t* __restrict__ out, int64_t total, int64_t d,
                                  Geometry g) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const int64_t c = t % d, qi = t / d;
    const int64_t bh = qi / g.N, p = qi % g.N;
    const int64_t y = p / g.W, x = p % g.W, base = bh * g.N;
    acc_t s = 0;
    for (int64_t j = 0; j < g.nk; ++j) {
      int64_t n;
      if (!window_neighbour<kTranspose>(g, y, x, j, &n)) continue;
      s += acc_t(w[(base + (kTranspose ? n : p)) * g.nk + j]) * acc_t(xs[(base + n) * d + c]);
    }
    out[t] = static_cast<scalar_t>(s);
  }
}

// partial[(h * nk + j) * chunks + chunk] = sum over the chunk's inside (b, p) of grad[b,h,p,j].
template <typename scalar_t, typename acc_t>
__global__ void rpb_partial_kernel(const scalar_t* __restrict__ grad, acc_t* __restrict__ partial,
                                   int64_t B, int64_t heads, Geometry g, int64_t chunks) {
  const int64_t chunk = blockIdx.x, j = blockIdx.y, h = blockIdx.z;
  const int64_t total = B * g.N;
  const int64_t begin = chunk * kRpbChunk;
  const int64_t end = begin + kRpbChunk < total ? begin + kRpbChunk : total;
  acc_t s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int64_t b = i / g.N, p = i % g.N;
    int64_t n;
    if (window_neighbour(g, p / g.W, p % g.W, j, &n))
      s += acc_t(grad[((b * heads + h) * g.N + p) * g.nk + j]);
  }
  __shared__ acc_t buf[kThreads];
  buf[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) buf[threadIdx.x] += buf[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[(h * g.nk + j) * chunks + chunk] = buf[0];
}

template <typename scalar_t, typename acc_t>
__global__ void rpb_final_kernel(const acc_t* __restrict__ partial, scalar_t* __restrict__ out,
                                 int64_t count, int64_t chunks) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= count) return;
  acc_t s = 0;
  for (int64_t c = 0; c < chunks; ++c) s += partial[t * chunks + c];
  out[t] = static_cast<scalar_t>(s);
}

template <typename scalar_t>
void launch_window_dot(const at::Tensor& a, const at::Tensor& b, const scalar_t* bias,
                       at::Tensor& out, int64_t heads, const Geometry& g, bool fill_neg_inf) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t queries = a.size(0) * a.size(1) * g.N;
  if (queries == 0) return;
  const acc_t fill = fill_neg_inf ? -std::numeric_limits<acc_t>::infinity() : acc_t(0);
  window_dot_kernel<scalar_t, acc_t>
      <<<num_blocks(queries * kLanes), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          const_ptr<scalar_t>(a), const_ptr<scalar_t>(b), bias,
          mutable_ptr<scalar_t>(out), queries, heads, a.size(3), g, fill);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, bool kTranspose>
void launch_window_sum(const at::Tensor& w, const at::Tensor& xs, at::Tensor& out,
                       const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t total = out.numel();
  if (total == 0) return;
  window_sum_kernel<scalar_t, acc_t, kTranspose>
      <<<num_blocks(total), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          const_ptr<scalar_t>(w), const_ptr<scalar_t>(xs),
          mutable_ptr<scalar_t>(out), total, xs.size(3), g);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_rpb_grad(const at::Tensor& grad, at::Tensor& out, int64_t B, int64_t heads,
                     const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t count = heads * g.nk;
  if (count == 0) return;
  const int64_t chunks = std::max<int64_t>(1, (B * g.N + kRpbChunk - 1) / kRpbChunk);
  TORCH_CHECK(chunks < (int64_t(1) << 31) && g.nk <= 65535 && heads <= 65535,
              "sliding_qk_backward: problem too large for the CUDA rpb-gradient grid");
  at::Tensor partial = at::empty({count * chunks},
                           grad.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  auto stream = at::cuda::getCurrentCUDAStream();
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(g.nk),
                  static_cast<unsigned>(heads));
  rpb_partial_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
      const_ptr<scalar_t>(grad), mutable_ptr<acc_t>(partial), B, heads, g, chunks);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  rpb_final_kernel<scalar_t, acc_t><<<num_blocks(count), kThreads, 0, stream>>>(
      const_ptr<acc_t>(partial), mutable_ptr<scalar_t>(out), count, chunks);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

#define MMTN_DISPATCH(TYPE, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, TYPE, NAME, __VA_ARGS__)

at::Tensor sliding_qk_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& rpb,
                           int64_t height, int64_t width, int64_t kernel_size) {
  const c10::cuda::CUDAGuard guard(q.device());
  const Geometry g = make_geometry(height, width, kernel_size);
  auto out = at::empty({q.size(0), q.size(1), g.N, g.nk}, q.options());
  MMTN_DISPATCH(q.scalar_type(), "sliding_qk_cuda", [&] {
    launch_window_dot<scalar_t>(q, k, const_ptr<scalar_t>(rpb), out, q.size(1), g, true);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sliding_qk_backward_cuda(
    const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k, int64_t height,
    int64_t width, int64_t kernel_size) {
  const c10::cuda::CUDAGuard guard(q.device());
  const Geometry g = make_geometry(height, width, kernel_size);
  auto grad_q = at::empty_like(q);
  auto grad_k = at::empty_like(k);
  auto grad_rpb = at::empty({q.size(1), g.nk}, q.options());
  MMTN_DISPATCH(q.scalar_type(), "sliding_qk_backward_cuda", [&] {
    launch_window_sum<scalar_t, false>(grad_attn, k, grad_q, g);
    launch_window_sum<scalar_t, true>(grad_attn, q, grad_k, g);
    launch_rpb_grad<scalar_t>(grad_attn, grad_rpb, q.size(0), q.size(1), g);
  });
  return {grad_q, grad_k, grad_rpb};
}

at::Tensor sliding_av_cuda(const at::Tensor& attn, const at::Tensor& v, int64_t height,
                           int64_t width, int64_t kernel_size) {
  const c10::cuda::CUDAGuard guard(v.device());
  const Geometry g = make_geometry(height, width, kernel_size);
  auto out = at::empty_like(v);
  MMTN_DISPATCH(v.scalar_type(), "sliding_av_cuda", [&] {
    launch_window_sum<scalar_t, false>(attn, v, out, g);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> sliding_av_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& attn, const at::Tensor& v, int64_t height,
    int64_t width, int64_t kernel_size) {
  const c10::cuda::CUDAGuard guard(v.device());
  const Geometry g = make_geometry(height, width, kernel_size);
  auto grad_attn = at::empty_like(attn);
  auto grad_v = at::empty_like(v);
  MMTN_DISPATCH(v.scalar_type(), "sliding_av_backward_cuda", [&] {
    launch_window_dot<scalar_t>(grad_out, v, nullptr, grad_attn, v.size(1), g, false);
    launch_window_sum<scalar_t, true>(attn, grad_out, grad_v, g);
  });
  return {grad_attn, grad_v};
}

#undef MMTN_DISPATCH

}  // namespace mmtransnext
