// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: launchers of the pad kernels over contiguous input and output tensors.
#include <cstdint>

#include "gkd/cuda/memory.hpp"

namespace gkd::cuda {

/// How an output index outside the input maps back (gkd::PadMode without the public header).
enum class PadKind { Constant, Reflect, Replicate };

/// Input and output shapes and the leading pad of every dim (0 for unpadded dims).
struct PadLayout {
  int rank = 0;
  PadKind kind = PadKind::Constant;
  std::int64_t in[kMaxRank] = {};
  std::int64_t out[kMaxRank] = {};
  std::int64_t before[kMaxRank] = {};
};

/// y[o] = x[source(o)], or `value` where a constant pad has no source; `n` output elements.
template <class T>
void launch_pad(const T* x, T* y, const PadLayout& layout, std::int64_t n, T value);
/// dx (zeroed by the caller)[source(o)] += g[o] for every output element o with a source.
template <class T>
void launch_pad_backward(const T* g, T* dx, const PadLayout& layout, std::int64_t n);

}  // namespace gkd::cuda
