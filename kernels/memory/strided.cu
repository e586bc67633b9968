// SPDX-License-Identifier: Apache-2.0
// Raw device primitives the tensor core dispatches to: fill, strided copy, strided accumulate. An
// accumulate that sums over dims (destination stride 0: the gradient of broadcasting, sum over dims)
// is a two-pass segmented reduction with a fixed summation order, not atomics.
#include <algorithm>
#include <cstdint>

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

/// Offsets of linear index `i` (row-major over layout.shape) in the destination and source. Index is
/// int where every index and offset fits: 64-bit division costs the GPU many instructions.
template <class Index>
__device__ inline void strided_offsets(const StridedPair& layout, Index i, Index& dst, Index& src) {
  dst = 0;
  src = 0;
  for (int d = layout.rank - 1; d >= 0; --d) {
    const auto size = static_cast<Index>(layout.shape[d]);
    const Index idx = i % size;
    i /= size;
    dst += idx * static_cast<Index>(layout.dst_stride[d]);
    src += idx * static_cast<Index>(layout.src_stride[d]);
  }
}

/// dst[layout.dst] = src[layout.src], or += when kAdd (distinct destination elements: no atomics).
template <class T, class Index, bool kAdd>
__global__ void strided_kernel(T* dst, const T* src, StridedPair layout, Index n) {
  for (Index i = static_cast<Index>(blockIdx.x) * static_cast<Index>(blockDim.x) + static_cast<Index>(threadIdx.x);
       i < n; i += static_cast<Index>(blockDim.x) * static_cast<Index>(gridDim.x)) {
    Index od = 0, os = 0;
    strided_offsets(layout, i, od, os);
    if constexpr (kAdd)
      dst[od] += src[os];
    else
      dst[od] = src[os];
  }
}

template <class T>
__global__ void add_contiguous_kernel(T* dst, const T* src, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    dst[i] += src[i];
}

/// Whether a merged layout is one run of consecutive elements on both sides.
bool contiguous_run(const StridedPair& m) {
  return m.rank == 0 || (m.rank == 1 && m.dst_stride[0] == 1 && m.src_stride[0] == 1);
}

/// Whether every index below n and every offset of `m` fits an int with room for the grid stride.
bool fits_int(const StridedPair& m, std::int64_t n) {
  constexpr std::int64_t kLimit = INT32_MAX / 2;
  std::int64_t dst = 0, src = 0;
  for (int d = 0; d < m.rank; ++d) {
    dst += (m.shape[d] - 1) * (m.dst_stride[d] < 0 ? -m.dst_stride[d] : m.dst_stride[d]);
    src += (m.shape[d] - 1) * (m.src_stride[d] < 0 ? -m.src_stride[d] : m.src_stride[d]);
  }
  return n <= kLimit && dst <= kLimit && src <= kLimit;
}

template <class T, bool kAdd>
void launch_strided(T* dst, const T* src, const StridedPair& m, std::int64_t n) {
  if (fits_int(m, n))
    strided_kernel<T, int, kAdd><<<grid_for(n), kBlock>>>(dst, src, m, static_cast<int>(n));
  else
    strided_kernel<T, std::int64_t, kAdd><<<grid_for(n), kBlock>>>(dst, src, m, n);
  GKD_CUDA_CHECK_LAUNCH(kAdd ? "accumulate_strided" : "copy_strided");
}

std::int64_t layout_numel(const StridedPair& layout) {
  std::int64_t n = 1;
  for (int d = 0; d < layout.rank; ++d) n *= layout.shape[d];
  return n;
}

/// An accumulate whose destination repeats over some dims, split into the kept dims (one output
/// each, m in [0, outputs)) and the summed dims (r in [0, length)), both row-major.
struct Reduction {
  StridedPair kept;
  int summed_rank = 0;
  std::int64_t summed_shape[kMaxRank] = {}, summed_src[kMaxRank] = {};
  std::int64_t outputs = 1, length = 1;
};

/// Splits the merged dims of `layout` into kept and summed (destination stride 0) dims.
Reduction plan_reduction(const StridedPair& layout) {
  const StridedPair m = merge_dims(layout);
  Reduction r;
  for (int d = 0; d < m.rank; ++d) {
    if (m.dst_stride[d] == 0) {
      r.summed_shape[r.summed_rank] = m.shape[d];
      r.summed_src[r.summed_rank++] = m.src_stride[d];
      r.length *= m.shape[d];
    } else {
      r.kept.shape[r.kept.rank] = m.shape[d];
      r.kept.src_stride[r.kept.rank] = m.src_stride[d];
      r.kept.dst_stride[r.kept.rank++] = m.dst_stride[d];
      r.outputs *= m.shape[d];
    }
  }
  return r;
}

__device__ inline std::int64_t summed_offset(const Reduction& p, std::int64_t r) {
  std::int64_t src = 0;
  for (int d = p.summed_rank - 1; d >= 0; --d) {
    src += (r % p.summed_shape[d]) * p.summed_src[d];
    r /= p.summed_shape[d];
  }
  return src;
}

/// Output m's sum over r in [chunk * blockIdx.y, chunk * (blockIdx.y + 1)): written to
/// partial[blockIdx.y * outputs + m], or added to dst when there is one chunk (partial null).
template <class T>
__device__ inline void finish(const Reduction& p, std::int64_t m, T sum, T* partial, T* dst) {
  if (partial) {
    partial[blockIdx.y * p.outputs + m] = sum;
  } else {
    std::int64_t od = 0, so = 0;
    strided_offsets(p.kept, m, od, so);
    dst[od] += sum;
  }
}

/// One block per (output, chunk): the summed dims hold the source's contiguous one, so the block's
/// threads read neighbouring elements.
template <class T>
__global__ void sum_rows_kernel(const T* src, Reduction p, std::int64_t chunk, T* partial, T* dst) {
  const std::int64_t m = blockIdx.x;
  std::int64_t od = 0, so = 0;
  strided_offsets(p.kept, m, od, so);
  const std::int64_t begin = chunk * blockIdx.y, end = std::min(p.length, begin + chunk);
  T sum = 0;
  for (std::int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) sum += src[so + summed_offset(p, r)];
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  __shared__ T warp_sums[kBlock / 32];
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    sum = 0;
    for (int w = 0; w < kBlock / 32; ++w) sum += warp_sums[w];
    finish(p, m, sum, partial, dst);
  }
}

/// One thread per (output, chunk): neighbouring threads own neighbouring outputs.
template <class T>
__global__ void sum_columns_kernel(const T* src, Reduction p, std::int64_t chunk, T* partial, T* dst) {
  const std::int64_t m = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (m >= p.outputs) return;
  std::int64_t od = 0, so = 0;
  strided_offsets(p.kept, m, od, so);
  const std::int64_t begin = chunk * blockIdx.y, end = std::min(p.length, begin + chunk);
  T sum = 0;
  for (std::int64_t r = begin; r < end; ++r) sum += src[so + summed_offset(p, r)];
  finish(p, m, sum, partial, dst);
}

/// dst[m] += the chunks' partial sums, in chunk order.
template <class T>
__global__ void sum_chunks_kernel(const T* partial, Reduction p, std::int64_t chunks, T* dst) {
  const std::int64_t m = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (m >= p.outputs) return;
  T sum = 0;
  for (std::int64_t c = 0; c < chunks; ++c) sum += partial[c * p.outputs + m];
  std::int64_t od = 0, so = 0;
  strided_offsets(p.kept, m, od, so);
  dst[od] += sum;
}

/// Blocks wanted in flight for a reduction to fill the GPU.
constexpr std::int64_t kTargetBlocks = 2048;

template <class T>
void accumulate_sum(T* dst, const T* src, const Reduction& p) {
  const bool rows = p.summed_src[p.summed_rank - 1] == 1 && p.length >= 512;
  const std::int64_t blocks_x = rows ? p.outputs : (p.outputs + kBlock - 1) / kBlock;
  const std::int64_t per_chunk = rows ? 4 * kBlock : 64;  // elements one block row / one thread sums at least
  const std::int64_t chunks = std::clamp<std::int64_t>(
      std::min((p.length + per_chunk - 1) / per_chunk, (kTargetBlocks + blocks_x - 1) / blocks_x), 1, 65535);
  const std::int64_t chunk = (p.length + chunks - 1) / chunks;
  GKD_CHECK(blocks_x <= 0x7fffffff, "accumulate_strided", p.outputs << " outputs exceed the grid");
  T* partial = nullptr;
  if (chunks > 1) {
    int device = 0;
    GKD_CUDA_CHECK(cudaGetDevice(&device));
    partial = static_cast<T*>(allocate(static_cast<std::size_t>(chunks * p.outputs) * sizeof(T), device));
  }
  const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(chunks));
  if (rows)
    sum_rows_kernel<<<grid, kBlock>>>(src, p, chunk, partial, dst);
  else
    sum_columns_kernel<<<grid, kBlock>>>(src, p, chunk, partial, dst);
  GKD_CUDA_CHECK_LAUNCH("accumulate_strided");
  if (partial) {
    sum_chunks_kernel<<<static_cast<unsigned>((p.outputs + kBlock - 1) / kBlock), kBlock>>>(partial, p, chunks, dst);
    GKD_CUDA_CHECK_LAUNCH("accumulate_strided");
    deallocate(partial);  // stream order protects the pending kernel
  }
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
  const StridedPair m = merge_dims(layout);
  if (contiguous_run(m)) {
    if (dst != src)
      GKD_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice, nullptr));
    return;
  }
  launch_strided<T, false>(dst, src, m, n);
}

template <Real T>
void accumulate_strided(T* dst, const T* src, const StridedPair& layout) {
  const std::int64_t n = layout_numel(layout);
  if (n <= 0) return;
  if (const Reduction p = plan_reduction(layout); p.summed_rank > 0) return accumulate_sum(dst, src, p);
  const StridedPair m = merge_dims(layout);
  if (contiguous_run(m)) {
    add_contiguous_kernel<<<grid_for(n), kBlock>>>(dst, src, n);
    GKD_CUDA_CHECK_LAUNCH("accumulate_strided");
    return;
  }
  launch_strided<T, true>(dst, src, m, n);
}

template void fill<float>(float*, std::int64_t, float);
template void fill<double>(double*, std::int64_t, double);
template void copy_strided<float>(float*, const float*, const StridedPair&);
template void copy_strided<double>(double*, const double*, const StridedPair&);
template void accumulate_strided<float>(float*, const float*, const StridedPair&);
template void accumulate_strided<double>(double*, const double*, const StridedPair&);

}  // namespace gkd::cuda
