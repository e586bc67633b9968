// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementations of sum (all elements, through CUB; or over dims), max, min, argmax, softmax
/// and log_softmax of gkd/ops/reduce.hpp, differentiable under the same op names. `gkd::sum`, `max`,
/// `min`, `argmax`, `softmax`, `log_softmax` (and `mean`, `var`, which are built from them) reach
/// them for GPU tensors when the program links `gkd::cuda`. Needs no CUDA headers to include.
/// @code
///   auto p = gkd::softmax(logits.cuda(), 1);   // [N, C, H, W] over classes, dispatches here
/// @endcode
#include <cstdint>
#include <vector>

#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

/// Sum of all elements (0-d result on the input's device).
template <Real T> Tensor<T> sum(const Tensor<T>& x);
/// Sum over `dims` (all when empty), keeping them with size 1 when `keepdim`.
template <Real T> Tensor<T> sum(const Tensor<T>& x, const std::vector<std::int64_t>& dims, bool keepdim);
/// Maximum / minimum along `dim` (the gradient goes to the first extreme element, as on the CPU).
template <Real T> Tensor<T> max(const Tensor<T>& x, std::int64_t dim, bool keepdim);
template <Real T> Tensor<T> min(const Tensor<T>& x, std::int64_t dim, bool keepdim);
/// Index of the first maximum along `dim`, as values of T (not differentiable).
template <Real T> Tensor<T> argmax(const Tensor<T>& x, std::int64_t dim, bool keepdim);
template <Real T> Tensor<T> softmax(const Tensor<T>& x, std::int64_t dim);
template <Real T> Tensor<T> log_softmax(const Tensor<T>& x, std::int64_t dim);

}  // namespace gkd::cuda
