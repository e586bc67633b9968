// SPDX-License-Identifier: Apache-2.0
// Sum (CUB), max/min/argmax and softmax/log-softmax over one dim, and the fused cross-entropy
// forward/backward. The per-dim kernels give one thread per (outer, inner) position and loop over
// the reduced dim, so loads are coalesced along `inner` (the pixels of an [N, C, H, W] segmentation map).
#include <cub/device/device_reduce.cuh>

#include "check.hpp"
#include "gkd/cuda/memory.hpp"
#include "launch.hpp"
#include "ops/reduce_kernels.hpp"

namespace gkd::cuda {
namespace {

__device__ inline std::int64_t global_thread() {
  return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
}
__device__ inline std::int64_t grid_threads() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

template <class T>
__global__ void softmax_kernel(const T* x, T* y, std::int64_t outer, std::int64_t len, std::int64_t inner, bool log) {
  const std::int64_t positions = outer * inner;
  for (std::int64_t p = global_thread(); p < positions; p += grid_threads()) {
    const std::int64_t o = p / inner, i = p % inner;
    const T* in = x + o * len * inner + i;
    T* out = y + o * len * inner + i;
    T m = -INFINITY;
    for (std::int64_t c = 0; c < len; ++c) m = fmax(m, in[c * inner]);
    T s = 0;
    for (std::int64_t c = 0; c < len; ++c) s += exp(in[c * inner] - m);
    if (log) {
      const T lse = m + ::log(s);
      for (std::int64_t c = 0; c < len; ++c) out[c * inner] = in[c * inner] - lse;
    } else {
      for (std::int64_t c = 0; c < len; ++c) out[c * inner] = exp(in[c * inner] - m) / s;
    }
  }
}

template <class T>
__global__ void extremum_kernel(const T* x, T* values, std::int64_t* index, T* index_value, std::int64_t outer,
                                std::int64_t len, std::int64_t inner, bool is_max) {
  const std::int64_t positions = outer * inner;
  for (std::int64_t p = global_thread(); p < positions; p += grid_threads()) {
    const T* in = x + (p / inner) * len * inner + p % inner;
    std::int64_t best = 0;
    T best_value = in[0];
    for (std::int64_t c = 1; c < len; ++c) {
      const T v = in[c * inner];
      if (is_max ? v > best_value : v < best_value) {
        best = c;
        best_value = v;
      }
    }
    if (values) values[p] = best_value;
    if (index) index[p] = best;
    if (index_value) index_value[p] = static_cast<T>(best);
  }
}

template <class T>
__global__ void scatter_along_kernel(const T* g, const std::int64_t* index, T* dx, std::int64_t outer,
                                     std::int64_t len, std::int64_t inner) {
  const std::int64_t positions = outer * inner;
  for (std::int64_t p = global_thread(); p < positions; p += grid_threads())
    dx[((p / inner) * len + index[p]) * inner + p % inner] = g[p];
}

template <class T>
__global__ void softmax_backward_kernel(const T* g, const T* y, T* gx, std::int64_t outer, std::int64_t len,
                                        std::int64_t inner, bool log) {
  const std::int64_t positions = outer * inner;
  for (std::int64_t p = global_thread(); p < positions; p += grid_threads()) {
    const std::int64_t base = (p / inner) * len * inner + p % inner;
    T dot = 0;
    for (std::int64_t c = 0; c < len; ++c) dot += log ? g[base + c * inner] : g[base + c * inner] * y[base + c * inner];
    for (std::int64_t c = 0; c < len; ++c) {
      const std::int64_t k = base + c * inner;
      gx[k] = log ? g[k] - exp(y[k]) * dot : y[k] * (g[k] - dot);
    }
  }
}

template <class T>
__global__ void cross_entropy_kernel(const T* x, const T* target, const T* weight, std::int64_t outer,
                                     std::int64_t classes, std::int64_t inner, std::int64_t ignore_index, double* lse,
                                     T* loss, T* wsum) {
  const std::int64_t positions = outer * inner;
  for (std::int64_t p = global_thread(); p < positions; p += grid_threads()) {
    const T* in = x + (p / inner) * classes * inner + p % inner;
    double m = -INFINITY;
    for (std::int64_t c = 0; c < classes; ++c) m = fmax(m, static_cast<double>(in[c * inner]));
    double s = 0;
    for (std::int64_t c = 0; c < classes; ++c) s += ::exp(static_cast<double>(in[c * inner]) - m);
    const double l = m + ::log(s);
    lse[p] = l;
    const auto k = static_cast<std::int64_t>(target[p]);
    if (k == ignore_index) {
      loss[p] = T(0);
      wsum[p] = T(0);
    } else {
      const double wk = weight ? static_cast<double>(weight[k]) : 1.0;
      loss[p] = static_cast<T>(wk * (l - static_cast<double>(in[k * inner])));
      wsum[p] = static_cast<T>(wk);
    }
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(const T* x, const T* target, const T* weight, const double* lse,
                                              const T* g_map, const T* g_scalar, const T* divisor, std::int64_t outer,
                                              std::int64_t classes, std::int64_t inner, std::int64_t ignore_index,
                                              T* dx) {
  const std::int64_t positions = outer * inner;
  const double scale = g_map ? 0.0 : static_cast<double>(*g_scalar) / (divisor ? static_cast<double>(*divisor) : 1.0);
  for (std::int64_t p = global_thread(); p < positions; p += grid_threads()) {
    const std::int64_t base = (p / inner) * classes * inner + p % inner;
    const auto k = static_cast<std::int64_t>(target[p]);
    const double coef = k == ignore_index ? 0.0
                                          : (g_map ? static_cast<double>(g_map[p]) : scale) *
                                                (weight ? static_cast<double>(weight[k]) : 1.0);
    for (std::int64_t c = 0; c < classes; ++c) {
      const double softmax = ::exp(static_cast<double>(x[base + c * inner]) - lse[p]);
      dx[base + c * inner] = static_cast<T>(coef * (softmax - (c == k ? 1.0 : 0.0)));
    }
  }
}

template <class T>
__global__ void invalid_targets_kernel(const T* target, std::int64_t n, std::int64_t classes, std::int64_t ignore_index,
                                       unsigned long long* count) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    const T v = target[i];
    const bool integer = isfinite(v) && v == trunc(v) && fabs(v) < T(9.0e15);
    const bool valid = integer && ((v >= T(0) && v < T(classes)) || static_cast<std::int64_t>(v) == ignore_index);
    if (!valid) atomicAdd(count, 1ULL);
  }
}

}  // namespace

template <class T>
std::int64_t count_invalid_targets(const T* target, std::int64_t n, std::int64_t classes, std::int64_t ignore_index,
                                   unsigned long long* count) {
  if (n <= 0) return 0;
  unsigned long long host = 0;
  GKD_CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof host));
  invalid_targets_kernel<<<grid_for(n), kBlock>>>(target, n, classes, ignore_index, count);
  GKD_CUDA_CHECK_LAUNCH("invalid_targets");
  GKD_CUDA_CHECK(cudaMemcpy(&host, count, sizeof host, cudaMemcpyDeviceToHost));
  return static_cast<std::int64_t>(host);
}

template <class T>
void launch_sum_all(const T* x, T* out, std::int64_t n, int device) {
  std::size_t temp_bytes = 0;
  GKD_CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, temp_bytes, x, out, n));
  void* temp = allocate(temp_bytes == 0 ? 1 : temp_bytes, device);
  try {
    GKD_CUDA_CHECK(cub::DeviceReduce::Sum(temp, temp_bytes, x, out, n));
  } catch (...) {
    deallocate(temp);
    throw;
  }
  deallocate(temp);  // stream-ordered: the next user of the block queues after this reduction
}

template <class T>
void launch_softmax(const T* x, T* y, std::int64_t outer, std::int64_t len, std::int64_t inner, bool log) {
  if (outer * inner * len <= 0) return;
  softmax_kernel<<<grid_for(outer * inner), kBlock>>>(x, y, outer, len, inner, log);
  GKD_CUDA_CHECK_LAUNCH("softmax");
}

template <class T>
void launch_softmax_backward(const T* g, const T* y, T* gx, std::int64_t outer, std::int64_t len, std::int64_t inner,
                             bool log) {
  if (outer * inner * len <= 0) return;
  softmax_backward_kernel<<<grid_for(outer * inner), kBlock>>>(g, y, gx, outer, len, inner, log);
  GKD_CUDA_CHECK_LAUNCH("softmax_backward");
}

template <class T>
void launch_cross_entropy(const T* x, const T* target, const T* weight, std::int64_t outer, std::int64_t classes,
                          std::int64_t inner, std::int64_t ignore_index, double* lse, T* loss, T* wsum) {
  if (outer * inner <= 0) return;
  cross_entropy_kernel<<<grid_for(outer * inner), kBlock>>>(x, target, weight, outer, classes, inner, ignore_index,
                                                             lse, loss, wsum);
  GKD_CUDA_CHECK_LAUNCH("cross_entropy");
}

template <class T>
void launch_cross_entropy_backward(const T* x, const T* target, const T* weight, const double* lse, const T* g_map,
                                   const T* g_scalar, const T* divisor, std::int64_t outer, std::int64_t classes,
                                   std::int64_t inner, std::int64_t ignore_index, T* dx) {
  if (outer * inner <= 0) return;
  cross_entropy_backward_kernel<<<grid_for(outer * inner), kBlock>>>(x, target, weight, lse, g_map, g_scalar, divisor,
                                                                      outer, classes, inner, ignore_index, dx);
  GKD_CUDA_CHECK_LAUNCH("cross_entropy_backward");
}

template <class T>
void launch_extremum(const T* x, T* values, std::int64_t* index, T* index_value, std::int64_t outer, std::int64_t len,
                     std::int64_t inner, bool is_max) {
  if (outer * inner <= 0 || len <= 0) return;
  extremum_kernel<<<grid_for(outer * inner), kBlock>>>(x, values, index, index_value, outer, len, inner, is_max);
  GKD_CUDA_CHECK_LAUNCH("extremum_kernel");
}

template <class T>
void launch_scatter_along(const T* g, const std::int64_t* index, T* dx, std::int64_t outer, std::int64_t len,
                          std::int64_t inner) {
  if (outer * inner <= 0 || len <= 0) return;
  scatter_along_kernel<<<grid_for(outer * inner), kBlock>>>(g, index, dx, outer, len, inner);
  GKD_CUDA_CHECK_LAUNCH("scatter_along_kernel");
}

#define GKD_INSTANTIATE_REDUCE(T)                                                                                  \
  template void launch_sum_all<T>(const T*, T*, std::int64_t, int);                                                \
  template std::int64_t count_invalid_targets<T>(const T*, std::int64_t, std::int64_t, std::int64_t,                \
                                                  unsigned long long*);                                            \
  template void launch_softmax<T>(const T*, T*, std::int64_t, std::int64_t, std::int64_t, bool);                   \
  template void launch_softmax_backward<T>(const T*, const T*, T*, std::int64_t, std::int64_t, std::int64_t, bool); \
  template void launch_cross_entropy<T>(const T*, const T*, const T*, std::int64_t, std::int64_t, std::int64_t,    \
                                        std::int64_t, double*, T*, T*);                                            \
  template void launch_cross_entropy_backward<T>(const T*, const T*, const T*, const double*, const T*, const T*,  \
                                                 const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, \
                                                 T*);                                                            \
  template void launch_extremum<T>(const T*, T*, std::int64_t*, T*, std::int64_t, std::int64_t, std::int64_t, bool); \
  template void launch_scatter_along<T>(const T*, const std::int64_t*, T*, std::int64_t, std::int64_t, std::int64_t);
GKD_INSTANTIATE_REDUCE(float)
GKD_INSTANTIATE_REDUCE(double)
#undef GKD_INSTANTIATE_REDUCE

}  // namespace gkd::cuda
