// SPDX-License-Identifier: Apache-2.0
// Adaptive average pooling, and max/average pooling with the CPU op's rules (for what cuDNN cannot
// express), forward and backward: one thread per output (forward) or per input (backward, gathering
// from the outputs whose window holds it, in increasing order like the CPU's scatter), grid-stride.
#include <cmath>

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


__device__ inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {  // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

template <class T>
__global__ void max_pool_kernel(const T* x, T* y, std::int64_t* index, PoolWindows g) {
  const std::int64_t n = g.planes * g.out_h * g.out_w;
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    const std::int64_t ow = i % g.out_w, oh = (i / g.out_w) % g.out_h, p = i / (g.out_w * g.out_h);
    std::int64_t h0 = oh * g.sh - g.ph;
    const std::int64_t h1 = min(h0 + (g.kh - 1) * g.dh + 1, g.in_h);
    while (h0 < 0) h0 += g.dh;
    std::int64_t w0 = ow * g.sw - g.pw;
    const std::int64_t w1 = min(w0 + (g.kw - 1) * g.dw + 1, g.in_w);
    while (w0 < 0) w0 += g.dw;
    const T* plane = x + p * g.in_h * g.in_w;
    T best = -INFINITY;
    std::int64_t at = h0 < h1 && w0 < w1 ? h0 * g.in_w + w0 : -1;
    for (std::int64_t ih = h0; ih < h1; ih += g.dh)
      for (std::int64_t iw = w0; iw < w1; iw += g.dw) {
        const T v = plane[ih * g.in_w + iw];
        if (v > best || isnan(v)) {
          best = v;
          at = ih * g.in_w + iw;
        }
      }
    y[i] = best;
    if (index) index[i] = at;
  }
}

template <class T>
__global__ void max_pool_backward_kernel(const T* dy, const std::int64_t* index, T* dx, PoolWindows g) {
  const std::int64_t n = g.planes * g.in_h * g.in_w;
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    const std::int64_t iw = i % g.in_w, ih = (i / g.in_w) % g.in_h, p = i / (g.in_w * g.in_h);
    const std::int64_t at = ih * g.in_w + iw;
    // Windows reaching row ih start at oh * sh - ph in [ih - (kh - 1) * dh, ih]; the index decides.
    const std::int64_t oh0 = max(floor_div(ih + g.ph - (g.kh - 1) * g.dh, g.sh), std::int64_t{0});
    const std::int64_t oh1 = min(floor_div(ih + g.ph, g.sh), g.out_h - 1);
    const std::int64_t ow0 = max(floor_div(iw + g.pw - (g.kw - 1) * g.dw, g.sw), std::int64_t{0});
    const std::int64_t ow1 = min(floor_div(iw + g.pw, g.sw), g.out_w - 1);
    const std::int64_t base = p * g.out_h * g.out_w;
    T sum = 0;
    for (std::int64_t oh = oh0; oh <= oh1; ++oh)
      for (std::int64_t ow = ow0; ow <= ow1; ++ow)
        if (index[base + oh * g.out_w + ow] == at) sum += dy[base + oh * g.out_w + ow];
    dx[i] = sum;
  }
}

/// The CPU's clipped average window along one dim: [lo, hi) and the padded extent end - start.
struct AvgSpan {
  std::int64_t lo, hi, padded;
};
__device__ inline AvgSpan avg_span(std::int64_t o, std::int64_t stride, std::int64_t pad, std::int64_t k,
                                   std::int64_t in) {
  const std::int64_t start = o * stride - pad;
  const std::int64_t end = min(start + k, in + pad);
  return {max(start, std::int64_t{0}), min(end, in), end - start};
}
__device__ inline std::int64_t avg_divisor(const AvgSpan& h, const AvgSpan& w, bool count_include_pad) {
  return count_include_pad ? h.padded * w.padded : (h.hi - h.lo) * (w.hi - w.lo);
}

template <class T>
__global__ void avg_pool_kernel(const T* x, T* y, PoolWindows g, bool count_include_pad) {
  const std::int64_t n = g.planes * g.out_h * g.out_w;
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    const std::int64_t ow = i % g.out_w, oh = (i / g.out_w) % g.out_h, p = i / (g.out_w * g.out_h);
    const AvgSpan wh = avg_span(oh, g.sh, g.ph, g.kh, g.in_h), ww = avg_span(ow, g.sw, g.pw, g.kw, g.in_w);
    if (wh.lo >= wh.hi || ww.lo >= ww.hi) {
      y[i] = T(0);
      continue;
    }
    const T* plane = x + p * g.in_h * g.in_w;
    T sum = 0;
    for (std::int64_t ih = wh.lo; ih < wh.hi; ++ih)
      for (std::int64_t iw = ww.lo; iw < ww.hi; ++iw) sum += plane[ih * g.in_w + iw];
    y[i] = sum / static_cast<T>(avg_divisor(wh, ww, count_include_pad));
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(const T* dy, T* dx, PoolWindows g, bool count_include_pad) {
  const std::int64_t n = g.planes * g.in_h * g.in_w;
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    const std::int64_t iw = i % g.in_w, ih = (i / g.in_w) % g.in_h, p = i / (g.in_w * g.in_h);
    const std::int64_t oh0 = max(floor_div(ih + g.ph - g.kh + 1, g.sh), std::int64_t{0});
    const std::int64_t oh1 = min(floor_div(ih + g.ph, g.sh), g.out_h - 1);
    const std::int64_t ow0 = max(floor_div(iw + g.pw - g.kw + 1, g.sw), std::int64_t{0});
    const std::int64_t ow1 = min(floor_div(iw + g.pw, g.sw), g.out_w - 1);
    const T* plane = dy + p * g.out_h * g.out_w;
    T sum = 0;
    for (std::int64_t oh = oh0; oh <= oh1; ++oh) {
      const AvgSpan wh = avg_span(oh, g.sh, g.ph, g.kh, g.in_h);
      if (ih < wh.lo || ih >= wh.hi) continue;
      for (std::int64_t ow = ow0; ow <= ow1; ++ow) {
        const AvgSpan ww = avg_span(ow, g.sw, g.pw, g.kw, g.in_w);
        if (iw < ww.lo || iw >= ww.hi) continue;
        sum += plane[oh * g.out_w + ow] / static_cast<T>(avg_divisor(wh, ww, count_include_pad));
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

template <class T>
void launch_max_pool(const T* x, T* y, std::int64_t* index, const PoolWindows& g) {
  const std::int64_t n = g.planes * g.out_h * g.out_w;
  if (n == 0) return;
  max_pool_kernel<<<grid_for(n), kBlock>>>(x, y, index, g);
  GKD_CUDA_CHECK_LAUNCH("max_pool_kernel");
}

template <class T>
void launch_max_pool_backward(const T* dy, const std::int64_t* index, T* dx, const PoolWindows& g) {
  const std::int64_t n = g.planes * g.in_h * g.in_w;
  if (n == 0) return;
  max_pool_backward_kernel<<<grid_for(n), kBlock>>>(dy, index, dx, g);
  GKD_CUDA_CHECK_LAUNCH("max_pool_backward_kernel");
}

template <class T>
void launch_avg_pool(const T* x, T* y, const PoolWindows& g, bool count_include_pad) {
  const std::int64_t n = g.planes * g.out_h * g.out_w;
  if (n == 0) return;
  avg_pool_kernel<<<grid_for(n), kBlock>>>(x, y, g, count_include_pad);
  GKD_CUDA_CHECK_LAUNCH("avg_pool_kernel");
}

template <class T>
void launch_avg_pool_backward(const T* dy, T* dx, const PoolWindows& g, bool count_include_pad) {
  const std::int64_t n = g.planes * g.in_h * g.in_w;
  if (n == 0) return;
  avg_pool_backward_kernel<<<grid_for(n), kBlock>>>(dy, dx, g, count_include_pad);
  GKD_CUDA_CHECK_LAUNCH("avg_pool_backward_kernel");
}

#define GKD_POOL_INSTANTIATE(T)                                                                   \
  template void launch_max_pool<T>(const T*, T*, std::int64_t*, const PoolWindows&);             \
  template void launch_max_pool_backward<T>(const T*, const std::int64_t*, T*, const PoolWindows&); \
  template void launch_avg_pool<T>(const T*, T*, const PoolWindows&, bool);                      \
  template void launch_avg_pool_backward<T>(const T*, T*, const PoolWindows&, bool);
GKD_POOL_INSTANTIATE(float)
GKD_POOL_INSTANTIATE(double)
#undef GKD_POOL_INSTANTIATE

template void launch_adaptive_avg_pool<float>(const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                              std::int64_t, std::int64_t);
template void launch_adaptive_avg_pool<double>(const double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                               std::int64_t, std::int64_t);
template void launch_adaptive_avg_pool_backward<float>(const float*, float*, std::int64_t, std::int64_t, std::int64_t,
                                                       std::int64_t, std::int64_t);
template void launch_adaptive_avg_pool_backward<double>(const double*, double*, std::int64_t, std::int64_t,
                                                        std::int64_t, std::int64_t, std::int64_t);

}  // namespace gkd::cuda
