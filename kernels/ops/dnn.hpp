// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: the cuDNN pieces shared by convolution, transposed convolution, batch norm
/// and pooling: the process-wide handle (on the legacy default stream, like every gkd kernel),
/// RAII descriptors and workspaces from the caching allocator.
#include <climits>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <type_traits>

#include "check.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/cuda/memory.hpp"

namespace gkd::cuda::dnn {

/// The shared cuDNN handle (created on first use, never destroyed: exit order).
inline cudnnHandle_t handle() {
  static std::once_flag once;
  static cudnnHandle_t h = nullptr;
  std::call_once(once, [] { GKD_CUDNN_CHECK(cudnnCreate(&h)); });
  return h;
}

template <Real T>
constexpr cudnnDataType_t data_type() {
  return std::is_same_v<T, float> ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

/// `v` as a cuDNN int, or a gkd::Error naming `op` when it does not fit.
inline int narrow(std::int64_t v, std::string_view op) {
  GKD_CHECK(v >= 0 && v <= INT_MAX, op, "size " << v << " exceeds cuDNN's 32-bit limit");
  return static_cast<int>(v);
}

/// A packed NCHW tensor descriptor.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(cudnnDataType_t type, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
             std::string_view op) {
    const int dims[4] = {narrow(n, op), narrow(c, op), narrow(h, op), narrow(w, op)};
    GKD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    GKD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, type, dims[0], dims[1], dims[2], dims[3]));
  }
  TensorDesc(cudnnDataType_t type, const Shape& s, std::string_view op) : TensorDesc(type, s[0], s[1], s[2], s[3], op) {}
  ~TensorDesc() { (void)cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

/// A KCRS filter descriptor ([out channels, in channels / groups, kh, kw]).
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(cudnnDataType_t type, const Shape& s, std::string_view op) {
    const int dims[4] = {narrow(s[0], op), narrow(s[1], op), narrow(s[2], op), narrow(s[3], op)};
    GKD_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    GKD_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, type, CUDNN_TENSOR_NCHW, dims[0], dims[1], dims[2], dims[3]));
  }
  ~FilterDesc() { (void)cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

/// Milliseconds that `run()` takes on the legacy default stream, timed with CUDA events (after the
/// caller's own warm-up).
template <class Run>
float elapsed_ms(Run run) {
  Event start, stop;
  start.record();
  run();
  stop.record();
  return stop.elapsed_ms(start);
}

/// Device scratch from the caching allocator, returned when the scope ends (stream-ordered reuse).
struct Workspace {
  void* ptr = nullptr;
  std::size_t bytes = 0;
  explicit Workspace(std::size_t n) : ptr(n ? allocate(n) : nullptr), bytes(n) {}
  ~Workspace() { deallocate(ptr); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

}  // namespace gkd::cuda::dnn
