// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: launchers of the index_select and gather kernels (device pointers, contiguous
/// row-major buffers). Backward kernels run one thread per data element and gather its gradient
/// from the outputs that read it, in increasing output order: no atomics, deterministic, and the
/// same additions in the same order as the CPU's scatter-add.
#include <cstdint>

#include "gkd/cuda/memory.hpp"

namespace gkd::cuda {

/// Converts the n index values `values` (integers stored as T) to `out` and checks each is a finite
/// integer in [0, bound). Returns the flat position of the first bad value, or -1 (one 8-byte read
/// back, which waits for the kernel). `first_bad`: one device scratch value on the values' device.
template <class T>
std::int64_t launch_indices_from_values(const T* values, std::int64_t n, std::int64_t bound, std::int64_t* out,
                                        unsigned long long* first_bad);

/// y [outer, count, inner] = x [outer, n, inner] at rows index[0..count).
template <class T>
void launch_index_select(const T* x, const std::int64_t* index, T* y, std::int64_t outer, std::int64_t n,
                         std::int64_t count, std::int64_t inner);
/// dx [outer, n, inner] (overwritten): row r sums the gradient rows k = order[offsets[r] .. offsets[r + 1])
/// of dy [outer, count, inner] (the positions k with index[k] == r, increasing).
template <class T>
void launch_index_select_backward(const T* dy, const std::int64_t* offsets, const std::int64_t* order, T* dx,
                                  std::int64_t outer, std::int64_t n, std::int64_t count, std::int64_t inner);

/// Shapes of a gather along `dim` with contiguous data [x_shape] and index/output [index_shape].
struct GatherLayout {
  int rank = 0;
  int dim = 0;
  std::int64_t x_shape[kMaxRank] = {};
  std::int64_t index_shape[kMaxRank] = {};
};

/// y[i] = x at index i's coordinates with coordinate `dim` replaced by index[i].
template <class T>
void launch_gather(const T* x, const std::int64_t* index, T* y, const GatherLayout& layout);
/// dx (x_shape, overwritten) = for each element, the sum of dy[i] over the positions i that gathered it.
template <class T>
void launch_gather_backward(const T* dy, const std::int64_t* index, T* dx, const GatherLayout& layout);

}  // namespace gkd::cuda
