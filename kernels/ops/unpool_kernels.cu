// SPDX-License-Identifier: Apache-2.0
// Max pooling that records its argmax positions (the CPU's rule) and max-unpooling forward and
// backward: one thread per pooled element, grid-stride, no atomics.
#include <cmath>

#include "check.hpp"
#include "launch.hpp"
#include "ops/unpool_kernels.hpp"

namespace gkd::cuda {
namespace {

__device__ inline std::int64_t first_thread() { return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; }
__device__ inline std::int64_t thread_step() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

template <class T>
__global__ void max_pool_indices_kernel(const T* x, std::int64_t* index, std::int64_t planes, std::int64_t in_h,
                                        std::int64_t in_w, std::int64_t out_h, std::int64_t out_w, std::int64_t kh,
                                        std::int64_t kw) {
  const std::int64_t total = planes * out_h * out_w;
  for (std::int64_t e = first_thread(); e < total; e += thread_step()) {
    const std::int64_t j = e % out_w, i = (e / out_w) % out_h, p = e / (out_w * out_h);
    const T* plane = x + p * in_h * in_w;
    std::int64_t at = (i * kh) * in_w + j * kw;
    T best = plane[at];
    for (std::int64_t a = 0; a < kh; ++a)
      for (std::int64_t b = 0; b < kw; ++b) {
        const std::int64_t o = (i * kh + a) * in_w + j * kw + b;
        const T v = plane[o];
        if (v > best || (isnan(v) && !isnan(best))) {
          best = v;
          at = o;
        }
      }
    index[e] = at;
  }
}

template <class T>
__global__ void max_unpool_kernel(const T* x, const std::int64_t* index, T* y, std::int64_t total,
                                  std::int64_t plane_in, std::int64_t plane_out) {
  for (std::int64_t e = first_thread(); e < total; e += thread_step()) y[(e / plane_out) * plane_in + index[e]] = x[e];
}

template <class T>
__global__ void max_unpool_backward_kernel(const T* dy, const std::int64_t* index, T* dx, std::int64_t total,
                                           std::int64_t plane_in, std::int64_t plane_out) {
  for (std::int64_t e = first_thread(); e < total; e += thread_step()) dx[e] = dy[(e / plane_out) * plane_in + index[e]];
}

}  // namespace

template <class T>
void launch_max_pool_indices(const T* x, std::int64_t* index, std::int64_t planes, std::int64_t in_h,
                             std::int64_t in_w, std::int64_t out_h, std::int64_t out_w, std::int64_t kh,
                             std::int64_t kw) {
  const std::int64_t total = planes * out_h * out_w;
  if (total <= 0) return;
  max_pool_indices_kernel<<<grid_for(total), kBlock>>>(x, index, planes, in_h, in_w, out_h, out_w, kh, kw);
  GKD_CUDA_CHECK_LAUNCH("max_pool_indices_kernel");
}

template <class T>
void launch_max_unpool(const T* x, const std::int64_t* index, T* y, std::int64_t planes, std::int64_t plane_in,
                       std::int64_t plane_out) {
  const std::int64_t total = planes * plane_out;
  if (total <= 0) return;
  max_unpool_kernel<<<grid_for(total), kBlock>>>(x, index, y, total, plane_in, plane_out);
  GKD_CUDA_CHECK_LAUNCH("max_unpool_kernel");
}

template <class T>
void launch_max_unpool_backward(const T* dy, const std::int64_t* index, T* dx, std::int64_t planes,
                                std::int64_t plane_in, std::int64_t plane_out) {
  const std::int64_t total = planes * plane_out;
  if (total <= 0) return;
  max_unpool_backward_kernel<<<grid_for(total), kBlock>>>(dy, index, dx, total, plane_in, plane_out);
  GKD_CUDA_CHECK_LAUNCH("max_unpool_backward_kernel");
}

#define GKD_UNPOOL_INSTANTIATE(T)                                                                                   \
  template void launch_max_pool_indices<T>(const T*, std::int64_t*, std::int64_t, std::int64_t, std::int64_t,     \
                                           std::int64_t, std::int64_t, std::int64_t, std::int64_t);               \
  template void launch_max_unpool<T>(const T*, const std::int64_t*, T*, std::int64_t, std::int64_t, std::int64_t); \
  template void launch_max_unpool_backward<T>(const T*, const std::int64_t*, T*, std::int64_t, std::int64_t,       \
                                              std::int64_t);
GKD_UNPOOL_INSTANTIATE(float)
GKD_UNPOOL_INSTANTIATE(double)
#undef GKD_UNPOOL_INSTANTIATE

}  // namespace gkd::cuda
