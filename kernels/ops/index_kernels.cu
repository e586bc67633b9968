// SPDX-License-Identifier: Apache-2.0
// index_select and gather, forward and backward, and the conversion of index values stored as T to
// validated int64: one thread per element, grid-stride. Backward kernels gather per data element in
// the CPU's order (no atomics); the only atomic is the integer minimum that finds the first bad index.
#include <cmath>

#include "check.hpp"
#include "launch.hpp"
#include "ops/index_kernels.hpp"

namespace gkd::cuda {
namespace {

__device__ inline std::int64_t first_thread() { return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; }
__device__ inline std::int64_t thread_step() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

template <class T>
__global__ void indices_from_values_kernel(const T* values, std::int64_t n, std::int64_t bound, std::int64_t* out,
                                           unsigned long long* first_bad) {
  for (std::int64_t i = first_thread(); i < n; i += thread_step()) {
    const T v = values[i];
    const bool ok = isfinite(v) && v == trunc(v) && v >= T(0) && v < T(9.0e15) && static_cast<std::int64_t>(v) < bound;
    out[i] = ok ? static_cast<std::int64_t>(v) : 0;
    if (!ok) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

template <class T>
__global__ void index_select_kernel(const T* x, const std::int64_t* index, T* y, std::int64_t outer, std::int64_t n,
                                    std::int64_t count, std::int64_t inner) {
  const std::int64_t total = outer * count * inner;
  for (std::int64_t i = first_thread(); i < total; i += thread_step()) {
    const std::int64_t j = i % inner, k = (i / inner) % count, o = i / (inner * count);
    y[i] = x[(o * n + index[k]) * inner + j];
  }
}

template <class T>
__global__ void index_select_backward_kernel(const T* dy, const std::int64_t* offsets, const std::int64_t* order, T* dx,
                                             std::int64_t outer, std::int64_t n, std::int64_t count, std::int64_t inner) {
  const std::int64_t total = outer * n * inner;
  for (std::int64_t i = first_thread(); i < total; i += thread_step()) {
    const std::int64_t j = i % inner, r = (i / inner) % n, o = i / (inner * n);
    T sum = 0;
    for (std::int64_t q = offsets[r]; q < offsets[r + 1]; ++q) sum += dy[(o * count + order[q]) * inner + j];
    dx[i] = sum;
  }
}

/// Row-major strides of `shape` (rank <= kMaxRank).
struct RowMajor {
  std::int64_t stride[kMaxRank];
  __device__ RowMajor(const std::int64_t* shape, int rank) {
    std::int64_t s = 1;
    for (int k = rank - 1; k >= 0; --k) {
      stride[k] = s;
      s *= shape[k];
    }
  }
};

template <class T>
__global__ void gather_kernel(const T* x, const std::int64_t* index, T* y, std::int64_t total, GatherLayout g) {
  const RowMajor xs(g.x_shape, g.rank);
  for (std::int64_t i = first_thread(); i < total; i += thread_step()) {
    std::int64_t rest = i, offset = 0;
    for (int k = g.rank - 1; k >= 0; --k) {
      const std::int64_t c = rest % g.index_shape[k];
      rest /= g.index_shape[k];
      offset += (k == g.dim ? index[i] : c) * xs.stride[k];
    }
    y[i] = x[offset];
  }
}

template <class T>
__global__ void gather_backward_kernel(const T* dy, const std::int64_t* index, T* dx, std::int64_t total, GatherLayout g) {
  const RowMajor is(g.index_shape, g.rank);
  for (std::int64_t q = first_thread(); q < total; q += thread_step()) {
    // q's coordinates in x; the outputs that may read it share every coordinate but `dim`.
    std::int64_t rest = q, base = 0, target = 0;
    bool reachable = true;
    for (int k = g.rank - 1; k >= 0; --k) {
      const std::int64_t c = rest % g.x_shape[k];
      rest /= g.x_shape[k];
      if (k == g.dim) {
        target = c;
      } else {
        reachable = reachable && c < g.index_shape[k];
        base += c * is.stride[k];
      }
    }
    T sum = 0;
    if (reachable)
      for (std::int64_t p = 0; p < g.index_shape[g.dim]; ++p) {
        const std::int64_t at = base + p * is.stride[g.dim];
        if (index[at] == target) sum += dy[at];
      }
    dx[q] = sum;
  }
}

std::int64_t product(const std::int64_t* shape, int rank) {
  std::int64_t n = 1;
  for (int k = 0; k < rank; ++k) n *= shape[k];
  return n;
}

}  // namespace

template <class T>
std::int64_t launch_indices_from_values(const T* values, std::int64_t n, std::int64_t bound, std::int64_t* out,
                                        unsigned long long* first_bad) {
  if (n <= 0) return -1;
  unsigned long long host = 0;
  GKD_CUDA_CHECK(cudaMemsetAsync(first_bad, 0xff, sizeof host));  // ULLONG_MAX: none found
  indices_from_values_kernel<<<grid_for(n), kBlock>>>(values, n, bound, out, first_bad);
  GKD_CUDA_CHECK_LAUNCH("indices_from_values_kernel");
  GKD_CUDA_CHECK(cudaMemcpy(&host, first_bad, sizeof host, cudaMemcpyDeviceToHost));
  return host == ~0ULL ? -1 : static_cast<std::int64_t>(host);
}

template <class T>
void launch_index_select(const T* x, const std::int64_t* index, T* y, std::int64_t outer, std::int64_t n,
                         std::int64_t count, std::int64_t inner) {
  const std::int64_t total = outer * count * inner;
  if (total <= 0) return;
  index_select_kernel<<<grid_for(total), kBlock>>>(x, index, y, outer, n, count, inner);
  GKD_CUDA_CHECK_LAUNCH("index_select_kernel");
}

template <class T>
void launch_index_select_backward(const T* dy, const std::int64_t* offsets, const std::int64_t* order, T* dx,
                                  std::int64_t outer, std::int64_t n, std::int64_t count, std::int64_t inner) {
  const std::int64_t total = outer * n * inner;
  if (total <= 0) return;
  index_select_backward_kernel<<<grid_for(total), kBlock>>>(dy, offsets, order, dx, outer, n, count, inner);
  GKD_CUDA_CHECK_LAUNCH("index_select_backward_kernel");
}

template <class T>
void launch_gather(const T* x, const std::int64_t* index, T* y, const GatherLayout& layout) {
  const std::int64_t total = product(layout.index_shape, layout.rank);
  if (total <= 0) return;
  gather_kernel<<<grid_for(total), kBlock>>>(x, index, y, total, layout);
  GKD_CUDA_CHECK_LAUNCH("gather_kernel");
}

template <class T>
void launch_gather_backward(const T* dy, const std::int64_t* index, T* dx, const GatherLayout& layout) {
  const std::int64_t total = product(layout.x_shape, layout.rank);
  if (total <= 0) return;
  gather_backward_kernel<<<grid_for(total), kBlock>>>(dy, index, dx, total, layout);
  GKD_CUDA_CHECK_LAUNCH("gather_backward_kernel");
}

#define GKD_INDEX_INSTANTIATE(T)                                                                                    \
  template std::int64_t launch_indices_from_values<T>(const T*, std::int64_t, std::int64_t, std::int64_t*,         \
                                                       unsigned long long*);                                       \
  template void launch_index_select<T>(const T*, const std::int64_t*, T*, std::int64_t, std::int64_t, std::int64_t, \
                                       std::int64_t);                                                              \
  template void launch_index_select_backward<T>(const T*, const std::int64_t*, const std::int64_t*, T*,            \
                                                std::int64_t, std::int64_t, std::int64_t, std::int64_t);           \
  template void launch_gather<T>(const T*, const std::int64_t*, T*, const GatherLayout&);                         \
  template void launch_gather_backward<T>(const T*, const std::int64_t*, T*, const GatherLayout&);
GKD_INDEX_INSTANTIATE(float)
GKD_INDEX_INSTANTIATE(double)
#undef GKD_INDEX_INSTANTIATE

}  // namespace gkd::cuda
