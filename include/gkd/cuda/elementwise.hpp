// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA implementations of the broadcasting elementwise ops, comparisons, `where` and activations
/// of gkd/ops/elementwise.hpp, differentiable (recorded under the same op names). They are reached
/// through the ordinary ops (`gkd::relu(x)` with x on a GPU) when the program links `gkd::cuda`;
/// calling them directly is fine too. Inputs must be on one CUDA device; results are contiguous on that device. Needs no CUDA
/// headers to include.
/// @code
///   auto y = gkd::relu(gkd::add(x.cuda(), b.cuda()));   // dispatches here
/// @endcode
#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

template <Real T> Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b);
template <Real T> Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b);
template <Real T> Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b);
template <Real T> Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b);
template <Real T> Tensor<T> neg(const Tensor<T>& x);
template <Real T> Tensor<T> add_scalar(const Tensor<T>& x, T s);
template <Real T> Tensor<T> mul_scalar(const Tensor<T>& x, T s);
template <Real T> Tensor<T> pow_scalar(const Tensor<T>& x, T p);
template <Real T> Tensor<T> relu(const Tensor<T>& x);
template <Real T> Tensor<T> relu6(const Tensor<T>& x);
template <Real T> Tensor<T> leaky_relu(const Tensor<T>& x, T slope);
template <Real T> Tensor<T> sigmoid(const Tensor<T>& x);
template <Real T> Tensor<T> tanh(const Tensor<T>& x);
/// Exact (erf) GELU, or PyTorch's tanh approximation when `tanh_approximation`.
template <Real T> Tensor<T> gelu(const Tensor<T>& x, bool tanh_approximation);
template <Real T> Tensor<T> exp(const Tensor<T>& x);
template <Real T> Tensor<T> log(const Tensor<T>& x);
template <Real T> Tensor<T> sqrt(const Tensor<T>& x);
/// a ^ b with broadcasting; the gradient w.r.t. b is g * y * log(a) (0 where a == 0).
template <Real T> Tensor<T> pow(const Tensor<T>& a, const Tensor<T>& b);
/// cond != 0 ? a : b with broadcasting of all three; differentiable w.r.t. a and b only.
template <Real T> Tensor<T> where(const Tensor<T>& cond, const Tensor<T>& a, const Tensor<T>& b);
/// 0/1 comparisons with broadcasting (not differentiable).
template <Real T> Tensor<T> gt(const Tensor<T>& a, const Tensor<T>& b);
template <Real T> Tensor<T> lt(const Tensor<T>& a, const Tensor<T>& b);
template <Real T> Tensor<T> eq(const Tensor<T>& a, const Tensor<T>& b);
/// |x| (gradient 0 at 0); clamp to [lo, hi] (gradient 1 where lo <= x <= hi); softplus.
template <Real T> Tensor<T> abs(const Tensor<T>& x);
template <Real T> Tensor<T> clamp(const Tensor<T>& x, T lo, T hi);
template <Real T> Tensor<T> softplus(const Tensor<T>& x, T beta, T threshold);

}  // namespace gkd::cuda
