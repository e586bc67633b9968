// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA conv2d through cuDNN (legacy API): forward, input and weight gradients, with groups
/// (depthwise included), stride, padding and dilation. The algorithm of each direction is chosen
/// once per geometry by cuDNN's heuristics (cudnnGetConvolution*Algorithm_v7) and cached; the
/// workspace comes from the caching allocator. float32 convolutions use FMA math (no TF32) unless
/// `gkd::cuda::set_allow_tf32(true)`. `gkd::conv2d` reaches this for GPU tensors when the program
/// links `gkd::cuda`. Needs no CUDA headers to include.
/// @code
///   auto y = gkd::conv2d(x.cuda(), w.cuda(), b.cuda(), 1, 1);   // 3x3, padding 1
/// @endcode
#include <cstdint>

#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

/// Stride, padding, dilation (height, width) and groups of a 2-D convolution.
struct ConvParams {
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1, groups = 1;
};

/// y = conv2d(x [N, Cin, H, W], weight [Cout, Cin/groups, kh, kw]) + bias [Cout] (bias may be undefined).
template <Real T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const ConvParams& params);

}  // namespace gkd::cuda
