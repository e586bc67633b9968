// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementations of `dropout` and `dropout2d` of gkd/ops/dropout.hpp, differentiable under the
/// same op names, with a counter-based mask: one 64-bit key is drawn from the gkd::Generator on the
/// host (so a run is reproducible from the generator's state, and the generator advances by one draw
/// per call, not per element), and element (or channel) k is kept when the k-th output of a
/// SplitMix64 stream seeded with that key, as a uniform in [0, 1), is >= p. The backward recomputes
/// the same mask from the key instead of storing it. The GPU mask differs from the CPU one (which
/// draws per element from the Mersenne Twister); its distribution is the same. `gkd::dropout` and
/// `gkd::dropout2d` reach these for GPU tensors when the program links `gkd::cuda`. Needs no CUDA
/// headers to include.
/// @code
///   gkd::Generator gen(7);
///   auto y = gkd::dropout(x.cuda(), 0.5, /*training=*/true, gen);   // dispatches here
/// @endcode
#include "gkd/core/random.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

template <Real T> Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& gen);
template <Real T> Tensor<T> dropout2d(const Tensor<T>& x, double p, bool training, Generator& gen);

}  // namespace gkd::cuda
