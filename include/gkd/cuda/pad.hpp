// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementation of `pad` of gkd/ops/pad.hpp (every PadMode: constant, reflect, replicate),
/// differentiable under the same op name; the backward sums the output gradient into each source
/// element with atomic adds (reflect and replicate read an element several times). `gkd::pad`
/// reaches it for GPU tensors when the program links `gkd::cuda`; the arguments are validated as on
/// the CPU. Needs no CUDA headers to include.
/// @code
///   auto y = gkd::pad(x.cuda(), {1, 1, 1, 1}, gkd::PadMode::Reflect);   // dispatches here
/// @endcode
#include <cstdint>
#include <vector>

#include "gkd/core/tensor.hpp"

namespace gkd {
enum class PadMode;  // defined in gkd/ops/pad.hpp
}  // namespace gkd

namespace gkd::cuda {

template <Real T>
Tensor<T> pad(const Tensor<T>& x, const std::vector<std::int64_t>& pads, PadMode mode, T value);

}  // namespace gkd::cuda
