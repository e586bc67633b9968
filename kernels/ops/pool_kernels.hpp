// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: launchers of our pooling kernels over `planes` contiguous in_h x in_w planes
/// (device pointers): adaptive average pooling, with PyTorch's window rule (output row i averages
/// input rows floor(i * in_h / out_h) .. ceil((i + 1) * in_h / out_h) - 1, likewise for columns), and
/// max/average pooling for what cuDNN cannot express (dilation, ceil_mode's extra windows), with the
/// CPU op's rules. Backward kernels gather per input (no atomics, deterministic).
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

/// Geometry of a windowed pooling (the fields of gkd::detail::PoolGeometry).
struct PoolWindows {
  std::int64_t planes, in_h, in_w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw;
};

/// Max pooling (padding is -inf, NaN wins, first maximum), also writing each output's argmax as an
/// offset in its plane (-1 for an empty window) unless `index` is nullptr.
template <class T>
void launch_max_pool(const T* x, T* y, std::int64_t* index, const PoolWindows& g);
/// dx (overwritten) = each input's sum of the output gradients whose argmax it is.
template <class T>
void launch_max_pool_backward(const T* dy, const std::int64_t* index, T* dx, const PoolWindows& g);
/// Average pooling (dilation 1) over windows clipped to the padded input, divided by the padded
/// window (count_include_pad) or by the inputs in it; an empty window gives 0.
template <class T>
void launch_avg_pool(const T* x, T* y, const PoolWindows& g, bool count_include_pad);
/// dx (overwritten) from dy of launch_avg_pool.
template <class T>
void launch_avg_pool_backward(const T* dy, T* dx, const PoolWindows& g, bool count_include_pad);

}  // namespace gkd::cuda
