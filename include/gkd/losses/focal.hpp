// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Multi-class focal loss on logits (Lin et al., "Focal Loss for Dense Object Detection", 2017), in
/// its softmax form for classification ([N, C]) and dense prediction ([N, C, H, W]):
///
///   p_t = softmax(x)_t,   l_i = −α[t_i] · (1 − p_t)^γ · log p_t
///
/// at every position i with target class t_i ≠ ignore_index (l_i = 0 where ignored); α is an optional
/// per-class weight vector [C] (α = 1 without it); γ = 0 without α is exactly cross-entropy.
/// Reductions: None (the [N, ...] map), Sum (Σ l_i), Mean (Σ l_i / number of non-ignored positions —
/// a plain count, NOT divided by Σ α as cross_entropy's weighted mean is; NaN when all are ignored).
/// log p_t comes from a stable logsumexp and 1 − p_t from −expm1(log p_t), so confident pixels
/// keep their precision. One fused kernel, like cross_entropy (double internally, rounded to T).
/// On a GPU the same loss is composed of device ops in T (log_softmax, gather, where, sums; 1 − p_t
/// as 1 − exp(log p_t)); the targets are validated through one host copy.
///
/// Example: `auto loss = gkd::focal_loss(logits, labels, 2.0f);   // [N, C, H, W], [N, H, W]`
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "gkd/losses/cross_entropy.hpp"
#include "gkd/losses/reduction.hpp"

namespace gkd {

/// Softmax focal loss of logits [N, C, ...] against class indices [N, ...].
/// @param gamma        focusing parameter, >= 0
/// @param alpha        optional class weights α [C]
/// @param ignore_index target value whose positions contribute nothing and are not counted
/// @throws gkd::Error as cross_entropy, or when gamma < 0 or not finite
template <Real T>
Tensor<T> focal_loss(const Tensor<T>& logits, const Tensor<T>& target, std::type_identity_t<T> gamma = T(2),
                     const Tensor<T>& alpha = Tensor<T>(), std::int64_t ignore_index = -100,
                     Reduction reduction = Reduction::Mean) {
  const bool device = detail::on_device(logits, target);
  detail::check_class_targets("focal_loss", logits, target, alpha, ignore_index, !device);
  GKD_CHECK(gamma >= 0 && std::isfinite(gamma), "focal_loss",
            "gamma must be non-negative and finite, got " << gamma << " for logits of shape "
                                                          << to_string(logits.shape()));
  if (device) {
    const auto targets = detail::device_class_targets(target, alpha, ignore_index);
    const Tensor<T> zero = Tensor<T>::zeros({}, logits.device());
    const Tensor<T> log_pt = detail::pick_classes(log_softmax(logits, 1), targets.safe);
    Tensor<T> l = neg(log_pt);
    if (gamma != 0) {
      // (1 − p_t)^γ; where 1 − p_t rounds to 0 the factor is 0 (as on the CPU), and pow runs on 1
      // there so that its gradient stays finite for γ < 1.
      const Tensor<T> rest = add(neg(exp(log_pt)), T(1));
      const Tensor<T> positive = gt(rest, zero);
      const Tensor<T> focus = pow(where(positive, rest, Tensor<T>::ones({}, logits.device())), T(gamma));
      l = mul(where(positive, focus, zero), l);
    }
    l = where(targets.counted, mul(targets.weight, l), zero);
    if (reduction == Reduction::None) return l;
    const Tensor<T> total = sum(l);
    return reduction == Reduction::Sum ? total : div(total, sum(targets.counted));
  }
  using Acc = detail::ClassLayout::Acc;
  const detail::ClassLayout lay(logits.shape(), 1);
  const Tensor<T> xc = logits.contiguous_copy_if_needed();
  const Tensor<T> tc = target.contiguous_copy_if_needed();
  const Tensor<T> ac = alpha.defined() ? alpha.contiguous_copy_if_needed() : Tensor<T>();
  const Acc g = gamma;
  auto lse = std::make_shared<std::vector<Acc>>(static_cast<std::size_t>(lay.positions()));
  std::vector<double> partial(static_cast<std::size_t>(2 * lay.blocks()));
  Tensor<T> map = reduction == Reduction::None ? Tensor<T>::empty(target.shape()) : Tensor<T>();
  {
    const T* x = xc.data();
    const T* t = tc.data();
    const T* a = ac.defined() ? ac.data() : nullptr;
    Acc* lp = lse->data();
    T* mp = map.defined() ? map.data() : nullptr;
    const std::int64_t C = lay.classes, S = lay.inner;
    lay.for_each_block([&](std::int64_t b, std::int64_t o, std::int64_t i0, std::int64_t i1) {
      const std::int64_t n = i1 - i0;
      const T* xb = x + o * C * S + i0;
      detail::block_log_sum_exp(xb, n, C, S, lp + o * S + i0);
      double loss_sum = 0, count = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t p = o * S + i0 + j;
        const auto k = static_cast<std::int64_t>(t[p]);
        Acc loss = 0;
        if (k != ignore_index) {
          const Acc log_pt = xb[k * S + j] - lp[p];
          loss = -(a ? Acc(a[k]) : 1.0) * std::pow(-std::expm1(log_pt), g) * log_pt;
          loss_sum += loss;
          count += 1;
        }
        if (mp) mp[p] = static_cast<T>(loss);
      }
      partial[static_cast<std::size_t>(2 * b)] = loss_sum;
      partial[static_cast<std::size_t>(2 * b + 1)] = count;
    });
  }
  const double loss_sum = detail::sum_partials(partial, 2, 0), count = detail::sum_partials(partial, 2, 1);
  Tensor<T> out = reduction == Reduction::None  ? map
                  : reduction == Reduction::Sum ? Tensor<T>::scalar(static_cast<T>(loss_sum))
                                                : Tensor<T>::scalar(static_cast<T>(loss_sum / count));
  return record("focal_loss", out, {logits}, [xc, tc, ac, lse, lay, g, reduction, count, ignore_index](const Tensor<T>& gout) {
    const Tensor<T> gc = gout.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(xc.shape());
    const T* x = xc.data();
    const T* t = tc.data();
    const T* a = ac.defined() ? ac.data() : nullptr;
    const Acc* lp = lse->data();
    const T* gp = gc.data();
    T* d = dx.data();
    const bool per_position = reduction == Reduction::None;
    const Acc scale = per_position ? 0.0 : reduction == Reduction::Mean ? double(gp[0]) / count : double(gp[0]);
    const std::int64_t C = lay.classes, S = lay.inner;
    // dl/dlog p_t = −α [(1−p)^γ − γ p log p (1−p)^(γ−1)];  dlog p_t / dx_c = [c == t] − softmax_c
    lay.for_each_block([&](std::int64_t, std::int64_t o, std::int64_t i0, std::int64_t i1) {
      constexpr std::int64_t B = detail::ClassLayout::kBlock;
      Acc coef[B];
      const std::int64_t n = i1 - i0, p0 = o * S + i0;
      const T* xb = x + o * C * S + i0;
      T* db = d + o * C * S + i0;
      for (std::int64_t j = 0; j < n; ++j) {
        const auto k = static_cast<std::int64_t>(t[p0 + j]);
        coef[j] = 0;
        if (k == ignore_index) continue;
        const Acc log_pt = xb[k * S + j] - lp[p0 + j], pt = std::exp(log_pt), rest = -std::expm1(log_pt);
        const Acc focus = g == 0 || rest <= 0 ? 0.0 : g * pt * log_pt * std::pow(rest, g - 1);
        coef[j] = (per_position ? Acc(gp[p0 + j]) : scale) * -(a ? Acc(a[k]) : 1.0) * (std::pow(rest, g) - focus);
      }
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t j = 0; j < n; ++j) db[c * S + j] = static_cast<T>(-coef[j] * std::exp(xb[c * S + j] - lp[p0 + j]));
      for (std::int64_t j = 0; j < n; ++j) {
        const auto k = static_cast<std::int64_t>(t[p0 + j]);
        if (k != ignore_index) db[k * S + j] = static_cast<T>(coef[j] * -std::expm1(xb[k * S + j] - lp[p0 + j]));
      }
    });
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace gkd

GKD_REGISTER_OPS(focal, "focal_loss")
