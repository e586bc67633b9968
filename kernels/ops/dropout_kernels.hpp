// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: the counter-based dropout kernel over contiguous tensors.
#include <cstdint>

namespace gkd::cuda {

/// y[i] = x[i] * (keep(i / group) ? scale : 0) for i in [0, n), where keep(k) is
/// uniform(splitmix64(key, k)) >= p. Used for the forward (x = input) and the backward (x = gradient).
template <class T>
void launch_dropout(const T* x, T* y, std::int64_t n, std::int64_t group, std::uint64_t key, double p, T scale);

}  // namespace gkd::cuda
