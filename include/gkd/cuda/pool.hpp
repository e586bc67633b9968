// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA pooling, differentiable under the op names of gkd/ops/pool.hpp, which reaches these for GPU
/// tensors when the program links `gkd::cuda`: max_pool2d and avg_pool2d through cuDNN pooling
/// (deterministic max pooling with NaN propagation; average pooling counting or excluding padding)
/// and adaptive_avg_pool2d by our own kernels (PyTorch's window rule). cuDNN pooling has no dilation
/// and rounds the output size down, so max_pool2d with dilation, and either pool with ceil_mode when
/// rounding up adds an output row or column, also run on our kernels with the CPU op's rules.
/// Where a max-pool window holds several equal maxima, cuDNN's gradient may go to another one than
/// the CPU op's first maximum. Needs no CUDA headers.
/// @code
///   auto down = gkd::max_pool2d(x.cuda(), 2);             // dispatches here
///   auto gap = gkd::adaptive_avg_pool2d(x.cuda(), 1);
/// @endcode
#include <cstdint>

#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

/// Window, stride, padding and dilation (height, width) of a 2-D pooling.
struct PoolParams {
  std::int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1,
               dilation_w = 1;
};

/// Max pooling of x [N, C, H, W] or [C, H, W]; see gkd::max_pool2d.
template <Real T>
Tensor<T> max_pool2d(const Tensor<T>& x, const PoolParams& params, bool ceil_mode);
/// Average pooling (dilation must be 1); see gkd::avg_pool2d.
template <Real T>
Tensor<T> avg_pool2d(const Tensor<T>& x, const PoolParams& params, bool ceil_mode, bool count_include_pad);
/// Adaptive average pooling to out_h x out_w; see gkd::adaptive_avg_pool2d.
template <Real T>
Tensor<T> adaptive_avg_pool2d(const Tensor<T>& x, std::int64_t out_h, std::int64_t out_w);

}  // namespace gkd::cuda
