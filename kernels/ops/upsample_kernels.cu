// SPDX-License-Identifier: Apache-2.0
// Grid-stride bilinear and nearest resize kernels: one thread per output element (columns fastest,
// so loads and stores are coalesced along the width); backward scatters into the input gradient with
// atomicAdd (float and double, sm_60+).
#include "check.hpp"
#include "launch.hpp"
#include "ops/upsample_kernels.hpp"

namespace gkd::cuda {
namespace {

__device__ inline std::int64_t global_thread() {
  return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
}
__device__ inline std::int64_t grid_threads() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

/// Plane, output row and output column of output element `i`.
struct OutIndex {
  std::int64_t p, oh, ow;
};
__device__ inline OutIndex out_index(const ResizeGeometry& g, std::int64_t i) {
  const std::int64_t ow = i % g.out_w;
  const std::int64_t rest = i / g.out_w;
  return {rest / g.out_h, rest % g.out_h, ow};
}

template <class T>
__global__ void bilinear_kernel(const T* x, T* y, ResizeGeometry g, BilinearTables<T> t, std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    const OutIndex o = out_index(g, i);
    const T* plane = x + o.p * g.in_h * g.in_w;
    const T* r0 = plane + t.h0[o.oh] * g.in_w;
    const T* r1 = plane + t.h1[o.oh] * g.in_w;
    const std::int64_t c0 = t.w0[o.ow], c1 = t.w1[o.ow];
    const T lw0 = t.wl0[o.ow], lw1 = t.wl1[o.ow];
    y[i] = (lw0 * r0[c0] + lw1 * r0[c1]) * t.hl0[o.oh] + (lw0 * r1[c0] + lw1 * r1[c1]) * t.hl1[o.oh];
  }
}

template <class T>
__global__ void bilinear_backward_kernel(const T* dy, T* dx, ResizeGeometry g, BilinearTables<T> t, std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    const OutIndex o = out_index(g, i);
    T* plane = dx + o.p * g.in_h * g.in_w;
    T* r0 = plane + t.h0[o.oh] * g.in_w;
    T* r1 = plane + t.h1[o.oh] * g.in_w;
    const std::int64_t c0 = t.w0[o.ow], c1 = t.w1[o.ow];
    const T lh0 = t.hl0[o.oh], lh1 = t.hl1[o.oh], lw0 = t.wl0[o.ow], lw1 = t.wl1[o.ow];
    const T v = dy[i];
    atomicAdd(r0 + c0, lh0 * lw0 * v);
    atomicAdd(r0 + c1, lh0 * lw1 * v);
    atomicAdd(r1 + c0, lh1 * lw0 * v);
    atomicAdd(r1 + c1, lh1 * lw1 * v);
  }
}

template <class T>
__global__ void nearest_kernel(const T* x, T* y, ResizeGeometry g, const std::int64_t* rows, const std::int64_t* cols,
                               std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    const OutIndex o = out_index(g, i);
    y[i] = x[(o.p * g.in_h + rows[o.oh]) * g.in_w + cols[o.ow]];
  }
}

template <class T>
__global__ void nearest_backward_kernel(const T* dy, T* dx, ResizeGeometry g, const std::int64_t* rows,
                                        const std::int64_t* cols, std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    const OutIndex o = out_index(g, i);
    atomicAdd(dx + (o.p * g.in_h + rows[o.oh]) * g.in_w + cols[o.ow], dy[i]);
  }
}

std::int64_t output_count(const ResizeGeometry& g) { return g.planes * g.out_h * g.out_w; }

}  // namespace

template <class T>
void launch_bilinear(const T* x, T* y, const ResizeGeometry& g, const BilinearTables<T>& t) {
  const std::int64_t n = output_count(g);
  if (n <= 0) return;
  bilinear_kernel<<<grid_for(n), kBlock>>>(x, y, g, t, n);
  GKD_CUDA_CHECK_LAUNCH("bilinear_kernel");
}

template <class T>
void launch_bilinear_backward(const T* dy, T* dx, const ResizeGeometry& g, const BilinearTables<T>& t) {
  const std::int64_t n = output_count(g);
  if (n <= 0) return;
  bilinear_backward_kernel<<<grid_for(n), kBlock>>>(dy, dx, g, t, n);
  GKD_CUDA_CHECK_LAUNCH("bilinear_backward_kernel");
}

template <class T>
void launch_nearest(const T* x, T* y, const ResizeGeometry& g, const std::int64_t* rows, const std::int64_t* cols) {
  const std::int64_t n = output_count(g);
  if (n <= 0) return;
  nearest_kernel<<<grid_for(n), kBlock>>>(x, y, g, rows, cols, n);
  GKD_CUDA_CHECK_LAUNCH("nearest_kernel");
}

template <class T>
void launch_nearest_backward(const T* dy, T* dx, const ResizeGeometry& g, const std::int64_t* rows,
                             const std::int64_t* cols) {
  const std::int64_t n = output_count(g);
  if (n <= 0) return;
  nearest_backward_kernel<<<grid_for(n), kBlock>>>(dy, dx, g, rows, cols, n);
  GKD_CUDA_CHECK_LAUNCH("nearest_backward_kernel");
}

#define GKD_INSTANTIATE_UPSAMPLE(T)                                                                            \
  template void launch_bilinear<T>(const T*, T*, const ResizeGeometry&, const BilinearTables<T>&);            \
  template void launch_bilinear_backward<T>(const T*, T*, const ResizeGeometry&, const BilinearTables<T>&);   \
  template void launch_nearest<T>(const T*, T*, const ResizeGeometry&, const std::int64_t*, const std::int64_t*); \
  template void launch_nearest_backward<T>(const T*, T*, const ResizeGeometry&, const std::int64_t*,          \
                                           const std::int64_t*);
GKD_INSTANTIATE_UPSAMPLE(float)
GKD_INSTANTIATE_UPSAMPLE(double)
#undef GKD_INSTANTIATE_UPSAMPLE

}  // namespace gkd::cuda
