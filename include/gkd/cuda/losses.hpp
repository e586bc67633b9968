// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementation of the fused cross_entropy of gkd/losses/cross_entropy.hpp (class weights,
/// ignore_index, None/Mean/Sum with PyTorch's weighted mean), differentiable w.r.t. the logits.
/// `gkd::cross_entropy` reaches it for GPU logits when the program links `gkd::cuda`. Targets are
/// validated on the host (one device-to-host copy of the labels per call). Needs no CUDA headers.
/// @code
///   auto loss = gkd::cross_entropy(logits.cuda(), labels.cuda(), {}, 255);
/// @endcode
#include <cstdint>

#include "gkd/core/tensor.hpp"
#include "gkd/losses/reduction.hpp"

namespace gkd::cuda {

template <Real T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<T>& target, const Tensor<T>& weight,
                        std::int64_t ignore_index, Reduction reduction);

}  // namespace gkd::cuda
