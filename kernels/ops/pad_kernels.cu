// SPDX-License-Identifier: Apache-2.0
// Grid-stride pad kernels: one thread per output element maps its multi-index back to the input
// (constant, reflect or replicate); the backward scatters with atomicAdd.
#include "check.hpp"
#include "launch.hpp"
#include "ops/pad_kernels.hpp"

namespace gkd::cuda {
namespace {

__device__ inline std::int64_t global_thread() {
  return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
}
__device__ inline std::int64_t grid_threads() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

/// Input index read by output index `o` of a dim of size `n` padded by `before`, or -1 (constant).
/// The same rules as gkd::detail::pad_source.
__device__ inline std::int64_t pad_source(std::int64_t o, std::int64_t n, std::int64_t before, PadKind kind) {
  std::int64_t i = o - before;
  switch (kind) {
    case PadKind::Constant: return i >= 0 && i < n ? i : -1;
    case PadKind::Reflect:
      if (i < 0) i = -i;
      if (i >= n) i = 2 * (n - 1) - i;
      return i;
    case PadKind::Replicate: return i < 0 ? 0 : (i >= n ? n - 1 : i);
  }
  return -1;
}

/// Contiguous input offset read by output element `i`, or -1 when it falls in a constant border.
__device__ inline std::int64_t source_offset(const PadLayout& layout, std::int64_t i) {
  std::int64_t offset = 0, stride = 1;
  for (int d = layout.rank - 1; d >= 0; --d) {
    const std::int64_t o = i % layout.out[d];
    i /= layout.out[d];
    const std::int64_t s = pad_source(o, layout.in[d], layout.before[d], layout.kind);
    if (s < 0) return -1;
    offset += s * stride;
    stride *= layout.in[d];
  }
  return offset;
}

template <class T>
__global__ void pad_kernel(const T* x, T* y, PadLayout layout, std::int64_t n, T value) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    const std::int64_t s = source_offset(layout, i);
    y[i] = s < 0 ? value : x[s];
  }
}

template <class T>
__global__ void pad_backward_kernel(const T* g, T* dx, PadLayout layout, std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    const std::int64_t s = source_offset(layout, i);
    if (s >= 0) atomicAdd(dx + s, g[i]);
  }
}

}  // namespace

template <class T>
void launch_pad(const T* x, T* y, const PadLayout& layout, std::int64_t n, T value) {
  if (n <= 0) return;
  pad_kernel<<<grid_for(n), kBlock>>>(x, y, layout, n, value);
  GKD_CUDA_CHECK_LAUNCH("pad_kernel");
}

template <class T>
void launch_pad_backward(const T* g, T* dx, const PadLayout& layout, std::int64_t n) {
  if (n <= 0) return;
  pad_backward_kernel<<<grid_for(n), kBlock>>>(g, dx, layout, n);
  GKD_CUDA_CHECK_LAUNCH("pad_backward_kernel");
}

template void launch_pad<float>(const float*, float*, const PadLayout&, std::int64_t, float);
template void launch_pad<double>(const double*, double*, const PadLayout&, std::int64_t, double);
template void launch_pad_backward<float>(const float*, float*, const PadLayout&, std::int64_t);
template void launch_pad_backward<double>(const double*, double*, const PadLayout&, std::int64_t);

}  // namespace gkd::cuda
