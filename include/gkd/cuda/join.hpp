// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementations of `concat` and `stack` of gkd/ops/join.hpp, differentiable under the same op
/// names: each input is copied into its slice of the output by the strided copy primitive, and each
/// input gradient is its slice of the output gradient made contiguous. `gkd::concat` and `gkd::stack`
/// reach them when any input is on a GPU and the program links `gkd::cuda`; all inputs must be on
/// the same device. Needs no CUDA headers to include.
/// @code
///   auto y = gkd::concat({up.cuda(), skip.cuda()}, 1);   // dispatches here
/// @endcode
#include <cstdint>
#include <vector>

#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

template <Real T> Tensor<T> concat(const std::vector<Tensor<T>>& tensors, std::int64_t dim);
template <Real T> Tensor<T> stack(const std::vector<Tensor<T>>& tensors, std::int64_t dim);

}  // namespace gkd::cuda
