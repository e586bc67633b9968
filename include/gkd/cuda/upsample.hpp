// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementations of `upsample_bilinear2d` and `upsample_nearest2d` of gkd/ops/upsample.hpp,
/// differentiable under the same op names. The source indices and weights come from the CPU op's own
/// tables (computed on the host, uploaded once per call), so the GPU reads exactly the elements the
/// CPU reads; the backward scatters with atomic adds. The ordinary ops reach them for GPU tensors when
/// the program links `gkd::cuda`. Needs no CUDA headers to include.
///
/// A scale factor <= 0 means "none": the output size was given (F.interpolate(size=...)); a positive
/// one is the scale_factor that produced the output size, which PyTorch uses for the source index.
/// @code
///   auto y = gkd::upsample_bilinear2d(x.cuda(), 2.0, false);   // dispatches here
/// @endcode
#include <cstdint>

#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

template <Real T>
Tensor<T> upsample_bilinear2d(const Tensor<T>& x, std::int64_t out_h, std::int64_t out_w, double scale_h,
                              double scale_w, bool align_corners);
template <Real T>
Tensor<T> upsample_nearest2d(const Tensor<T>& x, std::int64_t out_h, std::int64_t out_w, double scale_h,
                             double scale_w);

}  // namespace gkd::cuda
