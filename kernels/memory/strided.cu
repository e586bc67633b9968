// SPDX-License-Identifier: Apache-2.0
// Raw device primitives the tensor core dispatches to: fill, strided copy, strided atomic accumulate.
#include "check.hpp"
#include "gkd/cuda/memory.hpp"
#include "launch.hpp"

namespace gkd::cuda {
namespace {

template <class T>
__global__ void fill_kernel(T* dst, std::int64_t n, T value) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    dst[i] = value;
}

/// Offsets of linear index `i` (row-major over layout.shape) in the destination and source.
__device__ inline void strided_offsets(const StridedPair& layout, std::int64_t i, std::int64_t& dst,
                                       std::int64_t& src) {
  dst = 0;
  src = 0;
  for (int d = layout.rank - 1; d >= 0; --d) {
    const std::int64_t idx = i % layout.shape[d];
    i /= layout.shape[d];
    dst += idx * layout.dst_stride[d];
    src += idx * layout.src_stride[d];
  }
}

template <class T>
__global__ void copy_strided_kernel(T* dst, const T* src, StridedPair layout, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    std::int64_t od = 0, os = 0;
    strided_offsets(layout, i, od, os);
    dst[od] = src[os];
  }
}

template <class T>
__global__ void accumulate_strided_kernel(T* dst, const T* src, StridedPair layout, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    std::int64_t od = 0, os = 0;
    strided_offsets(layout, i, od, os);
    atomicAdd(dst + od, src[os]);
  }
}

std::int64_t layout_numel(const StridedPair& layout) {
  std::int64_t n = 1;
  for (int d = 0; d < layout.rank; ++d) n *= layout.shape[d];
  return n;
}

}  // namespace

template <Real T>
void fill(T* dst, std::int64_t n, T value) {
  if (n <= 0) return;
  fill_kernel<<<grid_for(n), kBlock>>>(dst, n, value);
  GKD_CUDA_CHECK_LAUNCH("fill");
}

template <Real T>
void copy_strided(T* dst, const T* src, const StridedPair& layout) {
  const std::int64_t n = layout_numel(layout);
  if (n <= 0) return;
  copy_strided_kernel<<<grid_for(n), kBlock>>>(dst, src, layout, n);
  GKD_CUDA_CHECK_LAUNCH("copy_strided");
}

template <Real T>
void accumulate_strided(T* dst, const T* src, const StridedPair& layout) {
  const std::int64_t n = layout_numel(layout);
  if (n <= 0) return;
  accumulate_strided_kernel<<<grid_for(n), kBlock>>>(dst, src, layout, n);
  GKD_CUDA_CHECK_LAUNCH("accumulate_strided");
}

template void fill<float>(float*, std::int64_t, float);
template void fill<double>(double*, std::int64_t, double);
template void copy_strided<float>(float*, const float*, const StridedPair&);
template void copy_strided<double>(double*, const double*, const StridedPair&);
template void accumulate_strided<float>(float*, const float*, const StridedPair&);
template void accumulate_strided<double>(double*, const double*, const StridedPair&);

}  // namespace gkd::cuda
