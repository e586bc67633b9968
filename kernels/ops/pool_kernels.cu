// SPDX-License-Identifier: Apache-2.0
// Adaptive average pooling, forward and backward: one thread per output (forward) or per input
// (backward, gathering), grid-stride.
#include "check.hpp"
#include "launch.hpp"
#include "ops/pool_kernels.hpp"

namespace gkd::cuda {
namespace {

__device__ inline std::int64_t window_start(std::int64_t i, std::int64_t in, std::int64_t out) {
  return (i * in) / out;
}
__device__ inline std::int64_t window_end(std::int64_t i, std::int64_t in, std::int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <class T>
__global__ void adaptive_avg_pool_kernel(const T* x, T* y, std::int64_t planes, std::int64_t in_h, std::int64_t in_w,
                                         std::int64_t out_h, std::int64_t out_w) {
  const std::int64_t n = planes * out_h * out_w;
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    const std::int64_t ow = i % out_w, oh = (i / out_w) % out_h, p = i / (out_w * out_h);
    const std::int64_t h0 = window_start(oh, in_h, out_h), h1 = window_end(oh, in_h, out_h);
    const std::int64_t w0 = window_start(ow, in_w, out_w), w1 = window_end(ow, in_w, out_w);
    const T* plane = x + p * in_h * in_w;
    T sum = 0;
    for (std::int64_t ih = h0; ih < h1; ++ih)
      for (std::int64_t iw = w0; iw < w1; ++iw) sum += plane[ih * in_w + iw];
    y[i] = sum / static_cast<T>(h1 - h0) / static_cast<T>(w1 - w0);
  }
}

template <class T>
__global__ void adaptive_avg_pool_backward_kernel(const T* dy, T* dx, std::int64_t planes, std::int64_t in_h,
                                                  std::int64_t in_w, std::int64_t out_h, std::int64_t out_w) {
  const std::int64_t n = planes * in_h * in_w;
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    const std::int64_t iw = i % in_w, ih = (i / in_w) % in_h, p = i / (in_w * in_h);
    // Output rows whose window holds row ih: floor(ih*out/in) <= oh < ceil((ih+1)*out/in).
    const std::int64_t oh0 = (ih * out_h) / in_h, oh1 = min(((ih + 1) * out_h + in_h - 1) / in_h, out_h);
    const std::int64_t ow0 = (iw * out_w) / in_w, ow1 = min(((iw + 1) * out_w + in_w - 1) / in_w, out_w);
    const T* plane = dy + p * out_h * out_w;
    T sum = 0;
    for (std::int64_t oh = oh0; oh < oh1; ++oh) {
      const std::int64_t h0 = window_start(oh, in_h, out_h), h1 = window_end(oh, in_h, out_h);
      if (ih < h0 || ih >= h1) continue;
      for (std::int64_t ow = ow0; ow < ow1; ++ow) {
        const std::int64_t w0 = window_start(ow, in_w, out_w), w1 = window_end(ow, in_w, out_w);
        if (iw < w0 || iw >= w1) continue;
        sum += plane[oh * out_w + ow] / static_cast<T>(h1 - h0) / static_cast<T>(w1 - w0);
      }
    }
    dx[i] = sum;
  }
}

}  // namespace

template <class T>
void launch_adaptive_avg_pool(const T* x, T* y, std::int64_t planes, std::int64_t in_h, std::int64_t in_w,
                              std::int64_t out_h, std::int64_t out_w) {
  const std::int64_t n = planes * out_h * out_w;
  if (n == 0) return;
  adaptive_avg_pool_kernel<<<grid_for(n), kBlock>>>(x, y, planes, in_h, in_w, out_h, out_w);
  GKD_CUDA_CHECK_LAUNCH("adaptive_avg_pool_kernel");
}

template <class T>
void launch_adaptive_avg_pool_backward(const T* dy, T* dx, std::int64_t planes, std::int64_t in_h, std::int64_t in_w,
                                       std::int64_t out_h, std::int64_t out_w) {
  const std::int64_t n = planes * in_h * in_w;
  if (n == 0) return;
  adaptive_avg_pool_backward_kernel<<<grid_for(n), kBlock>>>(dy, dx, planes, in_h, in_w, out_h, out_w);
  GKD_CUDA_CHECK_LAUNCH("adaptive_avg_pool_backward_kernel");
}

template void launch_adaptive_avg_pool<float>(const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                              std::int64_t, std::int64_t);
template void launch_adaptive_avg_pool<double>(const double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                               std::int64_t, std::int64_t);
template void launch_adaptive_avg_pool_backward<float>(const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                                       std::int64_t, std::int64_t);
template void launch_adaptive_avg_pool_backward<double>(const double*, double*, std::int64_t, std::int64_t,
                                                        std::int64_t, std::int64_t, std::int64_t);

}  // namespace gkd::cuda
