// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Binary cross-entropy on logits (F.binary_cross_entropy_with_logits), computed stably:
///
///   l_i = weight_i · [ (1 − y_i) x_i + (1 + (pos_weight_i − 1) y_i) · softplus(−x_i) ]
///
/// with softplus(−x) = −log σ(x) = max(−x, 0) + log1p(exp(−|x|)), which never overflows. `pos_weight`
/// scales the positive term (PyTorch's pos_weight: [C] for [N, C], or [C, 1, 1] for [N, C, H, W]);
/// `weight` rescales each element. Both broadcast to the input's shape and are constants. Targets
/// y ∈ [0, 1] (binary masks or soft labels) are constants too. Reductions: None (per element), Sum,
/// Mean (Σ l_i / numel, as in PyTorch — not divided by the weights).
///
/// Example: `auto loss = gkd::binary_cross_entropy_with_logits(logits, mask);   // [N, 1, H, W] both`
#include <cmath>

#include "gkd/losses/reduction.hpp"

namespace gkd {

namespace detail {
/// `w` broadcast to `shape` as an owned-or-shared contiguous tensor (undefined stays undefined).
template <Real T>
Tensor<T> broadcast_constant(const Tensor<T>& w, const Shape& shape, Device device, std::string_view op,
                             std::string_view what) {
  if (!w.defined()) return w;
  GKD_CHECK(w.device() == device, op, what << " is on " << w.device().str() << " but the input on " << device.str());
  bool ok = w.dim() <= shape.size();
  for (std::size_t i = 0; ok && i < w.dim(); ++i) {
    const std::int64_t have = w.shape()[i], want = shape[shape.size() - w.dim() + i];
    ok = have == want || have == 1;
  }
  GKD_CHECK(ok, op,
            what << " of shape " << to_string(w.shape()) << " does not broadcast to the input shape " << to_string(shape));
  return w.detach().expand(shape).contiguous_copy_if_needed();
}
}  // namespace detail

/// Binary cross-entropy with logits; input and target have the same shape.
/// @param pos_weight optional weight of the positive term, broadcast to the input (e.g. [C, 1, 1])
/// @param weight     optional per-element rescaling, broadcast to the input
/// @throws gkd::Error when input and target shapes differ or a weight does not broadcast
template <Real T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& input, const Tensor<T>& target,
                                           Reduction reduction = Reduction::Mean,
                                           const Tensor<T>& pos_weight = Tensor<T>(),
                                           const Tensor<T>& weight = Tensor<T>()) {
  constexpr std::string_view op = "binary_cross_entropy_with_logits";
  detail::check_same_shape(op, input, target);
  const Tensor<T> pw = detail::broadcast_constant(pos_weight, input.shape(), input.device(), op, "pos_weight");
  const Tensor<T> ew = detail::broadcast_constant(weight, input.shape(), input.device(), op, "weight");
  if (detail::on_device(input, target)) {  // the same formula from device ops (softplus is linear above 20)
    const Tensor<T> y = target.detach();
    const Tensor<T> lw = pw.defined() ? add(mul(add(pw, T(-1)), y), T(1)) : Tensor<T>();
    const Tensor<T> sp = softplus(neg(input));
    Tensor<T> l = add(sub(input, mul(y, input)), lw.defined() ? mul(lw, sp) : sp);
    if (ew.defined()) l = mul(ew, l);
    return detail::reduce_loss(l, reduction, static_cast<double>(input.numel()));
  }
  const T* ppw = pw.defined() ? pw.data() : nullptr;
  const T* pew = ew.defined() ? ew.data() : nullptr;
  // keep the broadcast weights alive in the backward closure
  auto loss = [ppw, pew, pw, ew](std::int64_t i, T x, T y) {
    const T softplus_neg = std::max(-x, T(0)) + std::log1p(std::exp(-std::abs(x)));
    const T lw = ppw ? T(1) + (ppw[i] - T(1)) * y : T(1);
    const T l = (T(1) - y) * x + lw * softplus_neg;
    return pew ? pew[i] * l : l;
  };
  auto dloss = [ppw, pew, pw, ew](std::int64_t i, T x, T y) {
    const T sig = x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
    const T d = ppw ? (T(1) + (ppw[i] - T(1)) * y) * sig - ppw[i] * y : sig - y;
    return pew ? pew[i] * d : d;
  };
  return detail::pointwise_loss(op, input, target, reduction, static_cast<double>(input.numel()), loss, dloss, nullptr);
}

}  // namespace gkd

GKD_REGISTER_OPS(bce, "binary_cross_entropy_with_logits")
