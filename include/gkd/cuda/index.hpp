// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementations of `index_select` and `gather` of gkd/ops/index.hpp, differentiable w.r.t. the
/// data under the same op names; `gkd::index_select` and `gkd::gather` reach them for GPU tensors when
/// the program links `gkd::cuda`. The data and a tensor of indices must be on one CUDA device.
///
/// index_select takes its (0-d or 1-d, small) indices on the host: the ordinary op validates them
/// through one host copy and passes them here. gather converts and validates its index tensor on the
/// device (one 8-byte read back); only a bad index is copied to the host, for the CPU op's message.
/// Both backward passes gather per data element in the CPU's order (no atomics, deterministic, and
/// bit-identical to the CPU's scatter-add). Needs no CUDA headers.
/// @code
///   auto rows = gkd::index_select(x.cuda(), 0, {2, 0});                  // dispatches here
///   auto picked = gkd::gather(logp.cuda(), 1, target.cuda().unsqueeze(1));
/// @endcode
#include <cstdint>
#include <vector>

#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

/// index_select of x along `dim` with `indices` already validated in [0, x.size(dim)); `index_shape`
/// (the shape of the caller's index tensor) only names it in messages.
template <Real T>
Tensor<T> index_select(const Tensor<T>& x, std::int64_t dim, const std::vector<std::int64_t>& indices,
                       const Shape& index_shape);
/// torch.gather of x along `dim` by `index` (integer values stored as T, on x's device).
template <Real T>
Tensor<T> gather(const Tensor<T>& x, std::int64_t dim, const Tensor<T>& index);

}  // namespace gkd::cuda
