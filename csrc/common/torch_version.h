// The torch version facts of the C++ side (the Python side keeps its own in
// mmtransnext/compat.py): what the headers of the oldest supported torch (2.0) lack.
#pragma once

#include <ATen/ATen.h>
#include <torch/version.h>

#define MMTN_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace mmtransnext {

// Tensor::const_data_ptr / mutable_data_ptr arrived in torch 2.1; data_ptr before it.
template <typename T>
inline const T* const_ptr(const at::Tensor& t) {
#if MMTN_TORCH_AT_LEAST(2, 1)
  return t.const_data_ptr<T>();
#else
  return t.data_ptr<T>();
#endif
}

template <typename T>
inline T* mutable_ptr(const at::Tensor& t) {
#if MMTN_TORCH_AT_LEAST(2, 1)
  return t.mutable_data_ptr<T>();
#else
  return t.data_ptr<T>();
#endif
}

}  // namespace mmtransnext
