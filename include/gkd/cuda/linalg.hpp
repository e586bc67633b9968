// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA matmul (2-D or batched with equal batch dims) and linear through cuBLAS, differentiable under
/// the same op names as gkd/ops/linalg.hpp, which reaches them for GPU tensors when the program links
/// `gkd::cuda`. float32 GEMMs use TF32 tensor cores only after `set_allow_tf32(true)` (default off,
/// so results match float32 to rounding); float64 always runs in full precision. Needs no CUDA headers.
/// @code
///   gkd::cuda::set_allow_tf32(true);              // ~10-bit mantissa products, fp32 accumulation
///   auto y = gkd::linear(x.cuda(), w.cuda(), b.cuda());
/// @endcode
#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

/// Allows (or forbids, the default) TF32 tensor-core math in float32 GEMMs, process-wide.
void set_allow_tf32(bool allow) noexcept;
[[nodiscard]] bool allow_tf32() noexcept;

template <Real T> Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b);
/// y = x Wᵀ + b over the last dim; `bias` may be undefined.
template <Real T> Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias);

}  // namespace gkd::cuda
