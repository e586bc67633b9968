// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: launch geometry shared by the grid-stride kernels.
#include <algorithm>
#include <cstdint>

namespace gkd::cuda {

/// Threads per block of the grid-stride kernels.
inline constexpr int kBlock = 256;

/// Blocks for `n` elements: enough to cover them, capped (grid-stride loops do the rest).
inline unsigned grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, 132 * 32));
}

}  // namespace gkd::cuda
