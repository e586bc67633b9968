// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The device side of autocast (gkd/core/autocast.hpp): rounding float32 device memory to 16 bits.
/// Needs no CUDA headers to include.
/// @code
///   gkd::cuda::round_to(y.data(), y.numel(), gkd::Precision::bf16);   // y on the GPU, contiguous
/// @endcode
#include <cstdint>

#include "gkd/core/autocast.hpp"

namespace gkd::cuda {

/// data[0..n) rounded in place to `p` (bfloat16 or half, ties to even; f32 leaves them), on the device.
void round_to(float* data, std::int64_t n, Precision p);

}  // namespace gkd::cuda
