// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Dropout (independent elements) and 2-D dropout (whole channels) with PyTorch's semantics: in
/// training, each element (or channel) is zeroed with probability p and the survivors are scaled by
/// 1 / (1 - p); in evaluation, or with p == 0, the input is returned unchanged. The mask is drawn
/// from an explicit gkd::Generator, so runs are reproducible from its seed. On a GPU (gkd::cuda) the
/// generator gives one 64-bit key per call and a counter-based hash draws the mask: same
/// distribution, different bits, see gkd/cuda/dropout.hpp.
///
/// Example:
/// @code
///   gkd::Generator gen(42);
///   auto h = gkd::dropout(x, 0.5, /*training=*/true, gen);
///   auto f = gkd::dropout2d(features, 0.1, training, gen);   // features [N, C, H, W]
/// @endcode
#include <memory>
#include <vector>

#include "gkd/core/random.hpp"
#include "gkd/ops/elementwise.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/dropout.hpp"
#endif

namespace gkd {

namespace detail {

/// y = x * mask where mask[i / group] is 0 with probability p and 1 / (1 - p) otherwise; one draw
/// per group of `group` consecutive elements (1 for dropout, H*W for dropout2d).
template <Real T>
Tensor<T> dropout_impl(std::string_view op, const Tensor<T>& x, double p, std::int64_t group, Generator& gen) {
  const std::int64_t groups = group > 0 ? x.numel() / group : 0;
  const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  auto mask = std::make_shared<std::vector<T>>(static_cast<std::size_t>(groups));
  for (auto& m : *mask) m = gen.uniform() < p ? T(0) : scale;

  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(x.shape());
  auto apply = [groups, group](const T* src, const std::vector<T>& m, T* dst) {
#pragma omp parallel for schedule(static) if (groups * group > kParallelGrain)
    for (std::int64_t k = 0; k < groups; ++k) {
      const T mk = m[static_cast<std::size_t>(k)];
      const T* s = src + k * group;
      T* d = dst + k * group;
#pragma omp simd
      for (std::int64_t j = 0; j < group; ++j) d[j] = s[j] * mk;
    }
  };
  apply(xc.data(), *mask, y.data());
  return record(op, y, {x}, [mask, apply, shape = x.shape()](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape);
    apply(gc.data(), *mask, dx.data());
    return std::vector<Tensor<T>>{dx};
  });
}

inline void check_dropout_p(std::string_view op, double p, const Shape& shape) {
  GKD_CHECK(p >= 0.0 && p <= 1.0, op, "probability p must be in [0, 1], got " << p << " (input " << to_string(shape) << ")");
}

}  // namespace detail

/// Zeroes each element of x with probability p and scales the rest by 1 / (1 - p) when training;
/// returns x itself when not training or when p == 0. Differentiable (the gradient uses the same mask).
/// @param gen the source of the mask; it advances by one draw per element
template <Real T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& gen) {
  GKD_CUDA_DISPATCH(x.device(), "dropout", dropout(x, p, training, gen));
  detail::check_cpu(x, "dropout");
  detail::check_dropout_p("dropout", p, x.shape());
  if (!training || p == 0.0) return x;
  return detail::dropout_impl("dropout", x, p, 1, gen);
}

/// Zeroes whole channels of x [N, C, H, W] with probability p and scales the rest by 1 / (1 - p)
/// when training; returns x itself when not training or when p == 0. Differentiable.
/// @param gen the source of the mask; it advances by one draw per (n, c) channel
template <Real T>
Tensor<T> dropout2d(const Tensor<T>& x, double p, bool training, Generator& gen) {
  GKD_CUDA_DISPATCH(x.device(), "dropout2d", dropout2d(x, p, training, gen));
  detail::check_cpu(x, "dropout2d");
  GKD_CHECK(x.dim() == 4, "dropout2d", "input must be 4-D (N, C, H, W), got " << to_string(x.shape()));
  detail::check_dropout_p("dropout2d", p, x.shape());
  if (!training || p == 0.0) return x;
  return detail::dropout_impl("dropout2d", x, p, x.shape()[2] * x.shape()[3], gen);
}

}  // namespace gkd

GKD_REGISTER_OPS(dropout, "dropout", "dropout2d")
