// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Regression losses with PyTorch's semantics, as fused elementwise kernels (d = input − target):
///
///   mse_loss:        d²
///   l1_loss:         |d|                       (gradient sign(d), 0 at d = 0)
///   smooth_l1_loss:  0.5 d² / beta  if |d| < beta,  |d| − 0.5 beta  otherwise  (beta = 0: |d|)
///
/// Reductions: None (per element), Sum, Mean (over all elements). Input and target must have the same
/// shape (PyTorch broadcasts with a warning; gkd refuses). Both are differentiable, so the losses
/// serve feature distillation directly: `gkd::mse_loss(student_feat, teacher_feat.detach())`.
/// On a GPU the three losses are composed of device ops (sums in T, not double).
#include <cmath>
#include <type_traits>

#include "gkd/losses/reduction.hpp"

namespace gkd {

/// Mean squared error (F.mse_loss).
/// @throws gkd::Error when input and target shapes differ
template <Real T>
Tensor<T> mse_loss(const Tensor<T>& input, const Tensor<T>& target, Reduction reduction = Reduction::Mean) {
  detail::check_same_shape("mse_loss", input, target);
  if (detail::on_device(input, target)) {
    const Tensor<T> d = sub(input, target);
    return detail::reduce_loss(mul(d, d), reduction, static_cast<double>(input.numel()));
  }
  return detail::pointwise_loss(
      "mse_loss", input, target, reduction, static_cast<double>(input.numel()),
      [](std::int64_t, T x, T y) { return (x - y) * (x - y); }, [](std::int64_t, T x, T y) { return T(2) * (x - y); },
      [](std::int64_t, T x, T y) { return T(2) * (y - x); });
}

/// Mean absolute error (F.l1_loss).
/// @throws gkd::Error when input and target shapes differ
template <Real T>
Tensor<T> l1_loss(const Tensor<T>& input, const Tensor<T>& target, Reduction reduction = Reduction::Mean) {
  detail::check_same_shape("l1_loss", input, target);
  if (detail::on_device(input, target))
    return detail::reduce_loss(abs(sub(input, target)), reduction, static_cast<double>(input.numel()));
  auto sign = [](T d) { return d > 0 ? T(1) : (d < 0 ? T(-1) : T(0)); };
  return detail::pointwise_loss(
      "l1_loss", input, target, reduction, static_cast<double>(input.numel()),
      [](std::int64_t, T x, T y) { return std::abs(x - y); }, [sign](std::int64_t, T x, T y) { return sign(x - y); },
      [sign](std::int64_t, T x, T y) { return -sign(x - y); });
}

/// Smooth L1 (Huber-like) loss with threshold `beta` (F.smooth_l1_loss).
/// @throws gkd::Error when shapes differ or beta < 0
template <Real T>
Tensor<T> smooth_l1_loss(const Tensor<T>& input, const Tensor<T>& target, Reduction reduction = Reduction::Mean,
                         std::type_identity_t<T> beta = T(1)) {
  detail::check_same_shape("smooth_l1_loss", input, target);
  GKD_CHECK(beta >= 0, "smooth_l1_loss",
            "beta must be non-negative, got " << beta << " for input of shape " << to_string(input.shape()));
  const T b = beta;
  if (detail::on_device(input, target)) {
    // With a = |d| and m = clamp(a, 0, beta), 0.5 m² / beta + (a − m) is the loss on both sides of beta
    // and never squares more than beta. Its derivative in a, (m / beta − 1) m' + 1, is a / beta below
    // beta and 1 from beta up (at a == beta, m' = 1 and m / beta = 1): the CPU's gradient.
    const Tensor<T> a = abs(sub(input, target));
    if (b == T(0)) return detail::reduce_loss(a, reduction, static_cast<double>(input.numel()));
    const Tensor<T> m = clamp(a, T(0), b);
    return detail::reduce_loss(add(mul(mul(m, m), T(0.5) / b), sub(a, m)), reduction,
                               static_cast<double>(input.numel()));
  }
  auto grad = [b](T d) {
    if (std::abs(d) < b) return d / b;
    return d > 0 ? T(1) : (d < 0 ? T(-1) : T(0));
  };
  return detail::pointwise_loss(
      "smooth_l1_loss", input, target, reduction, static_cast<double>(input.numel()),
      [b](std::int64_t, T x, T y) {
        const T d = std::abs(x - y);
        return d < b ? T(0.5) * d * d / b : d - T(0.5) * b;
      },
      [grad](std::int64_t, T x, T y) { return grad(x - y); }, [grad](std::int64_t, T x, T y) { return -grad(x - y); });
}

}  // namespace gkd

GKD_REGISTER_OPS(regression, "mse_loss", "l1_loss", "smooth_l1_loss")
