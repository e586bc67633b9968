// SPDX-License-Identifier: Apache-2.0
// Raw device primitives the tensor core dispatches to: fill, strided copy, strided accumulate. An
// accumulate that sums over dims (destination stride 0: the gradient of broadcasting, sum over dims)
// is a two-pass segmented reduction with a fixed summation order, not atomics.
#include <algorithm>

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

/// An accumulate whose destination repeats over some dims, split into the kept dims (one output
/// each, m in [0, outputs)) and the summed dims (r in [0, length)), both row-major.
struct Reduction {
  int kept_rank = 0, summed_rank = 0;
  std::int64_t kept_shape[kMaxRank] = {}, kept_src[kMaxRank] = {}, kept_dst[kMaxRank] = {};
  std::int64_t summed_shape[kMaxRank] = {}, summed_src[kMaxRank] = {};
  std::int64_t outputs = 1, length = 1;
};

/// Drops size-1 dims and merges neighbours that are contiguous in both the source and the
/// destination; then splits them into kept and summed (destination stride 0) dims.
Reduction plan_reduction(const StridedPair& layout) {
  StridedPair m;
  for (int d = 0; d < layout.rank; ++d) {
    if (layout.shape[d] == 1) continue;
    const int last = m.rank - 1;
    if (last >= 0 && m.dst_stride[last] == layout.dst_stride[d] * layout.shape[d] &&
        m.src_stride[last] == layout.src_stride[d] * layout.shape[d]) {
      m.shape[last] *= layout.shape[d];
      m.dst_stride[last] = layout.dst_stride[d];
      m.src_stride[last] = layout.src_stride[d];
      continue;
    }
    m.shape[m.rank] = layout.shape[d];
    m.dst_stride[m.rank] = layout.dst_stride[d];
    m.src_stride[m.rank++] = layout.src_stride[d];
  }
  Reduction r;
  for (int d = 0; d < m.rank; ++d) {
    if (m.dst_stride[d] == 0) {
      r.summed_shape[r.summed_rank] = m.shape[d];
      r.summed_src[r.summed_rank++] = m.src_stride[d];
      r.length *= m.shape[d];
    } else {
      r.kept_shape[r.kept_rank] = m.shape[d];
      r.kept_src[r.kept_rank] = m.src_stride[d];
      r.kept_dst[r.kept_rank++] = m.dst_stride[d];
      r.outputs *= m.shape[d];
    }
  }
  return r;
}

__device__ inline void kept_offsets(const Reduction& p, std::int64_t m, std::int64_t& src, std::int64_t& dst) {
  src = 0;
  dst = 0;
  for (int d = p.kept_rank - 1; d >= 0; --d) {
    const std::int64_t idx = m % p.kept_shape[d];
    m /= p.kept_shape[d];
    src += idx * p.kept_src[d];
    dst += idx * p.kept_dst[d];
  }
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
    std::int64_t so = 0, od = 0;
    kept_offsets(p, m, so, od);
    dst[od] += sum;
  }
}

/// One block per (output, chunk): the summed dims hold the source's contiguous one, so the block's
/// threads read neighbouring elements.
template <class T>
__global__ void sum_rows_kernel(const T* src, Reduction p, std::int64_t chunk, T* partial, T* dst) {
  const std::int64_t m = blockIdx.x;
  std::int64_t so = 0, od = 0;
  kept_offsets(p, m, so, od);
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
  std::int64_t so = 0, od = 0;
  kept_offsets(p, m, so, od);
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
  std::int64_t so = 0, od = 0;
  kept_offsets(p, m, so, od);
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
  copy_strided_kernel<<<grid_for(n), kBlock>>>(dst, src, layout, n);
  GKD_CUDA_CHECK_LAUNCH("copy_strided");
}

template <Real T>
void accumulate_strided(T* dst, const T* src, const StridedPair& layout) {
  const std::int64_t n = layout_numel(layout);
  if (n <= 0) return;
  if (const Reduction p = plan_reduction(layout); p.summed_rank > 0) return accumulate_sum(dst, src, p);
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
