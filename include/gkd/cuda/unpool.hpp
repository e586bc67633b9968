// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementations of `nn::max_pool2d_indices` and `nn::max_unpool2d` (gkd/nn/max_unpool.hpp),
/// which reach them for GPU tensors when the program links `gkd::cuda`. The argmax positions stay in
/// device memory as int64 plane offsets h * W + w with the CPU op's rule (the first maximum of each
/// window; the first NaN wins), so the GPU indices equal the CPU's. max_unpool2d is differentiable in
/// its values: the forward scatters into zeros (the windows do not overlap, so no two values share a
/// position and no atomics are needed), the backward gathers. Needs no CUDA headers.
/// @code
///   auto where = gkd::nn::max_pool2d_indices(x.cuda(), 2);   // dispatches here
/// @endcode
#include <cstdint>
#include <memory>
#include <vector>

#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

/// The argmax positions of the kernel_h x kernel_w, stride = kernel max pooling of x [N, C, H, W] (on
/// a GPU; the caller has checked the shapes), one int64 per pooled element in device memory.
template <Real T>
std::shared_ptr<const std::int64_t> max_pool2d_indices(const Tensor<T>& x, std::int64_t kernel_h,
                                                       std::int64_t kernel_w);
/// Scatters x [N, C, h, w] into zeros of `input_shape` [N, C, H, W] at the device positions `index`
/// (from max_pool2d_indices on x's device); differentiable in x.
template <Real T>
Tensor<T> max_unpool2d(const Tensor<T>& x, const std::shared_ptr<const std::int64_t>& index, const Shape& input_shape);

}  // namespace gkd::cuda
