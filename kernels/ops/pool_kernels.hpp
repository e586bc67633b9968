// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: launchers of the adaptive average pooling kernels over `planes` contiguous
/// in_h x in_w planes (device pointers), with PyTorch's window rule: output row i averages input rows
/// floor(i * in_h / out_h) .. ceil((i + 1) * in_h / out_h) - 1, and likewise for columns.
#include <cstdint>

namespace gkd::cuda {

/// y [planes, out_h, out_w] = adaptive average pool of x [planes, in_h, in_w].
template <class T>
void launch_adaptive_avg_pool(const T* x, T* y, std::int64_t planes, std::int64_t in_h, std::int64_t in_w,
                              std::int64_t out_h, std::int64_t out_w);
/// dx [planes, in_h, in_w] (overwritten) from dy [planes, out_h, out_w]: each input gathers the
/// gradients of the windows that contain it (no atomics, deterministic).
template <class T>
void launch_adaptive_avg_pool_backward(const T* dy, T* dx, std::int64_t planes, std::int64_t in_h, std::int64_t in_w,
                                       std::int64_t out_h, std::int64_t out_w);

}  // namespace gkd::cuda
