// Macros shared by the CPU (.cpp) and CUDA (.cu) kernels, as in mmcv's csrc/common.
// HOST_DEVICE functions compile for both: the CPU kernels and tests run the same element
// math that the GPU runs.
#pragma once

#ifdef __CUDACC__
#define HOST_DEVICE __host__ __device__
#define HOST_DEVICE_INLINE __host__ __device__ __forceinline__
#else
#define HOST_DEVICE
// always_inline: the element helpers must inline into the vectorised row loops (GCC's
// heuristics called exp_nonpositive "cold" and kept a call, so exp_sum ran scalar)
#define HOST_DEVICE_INLINE inline __attribute__((always_inline))
#endif
