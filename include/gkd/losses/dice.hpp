// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Soft Dice loss for segmentation. With probabilities p [N, C, ...] (after the optional activation)
/// and targets t of the same shape (one-hot, binary or soft masks) — or class indices [N, ...],
/// one-hot encoded internally — per class c, summing over the batch and all spatial positions:
///
///   D_c = (2 Σ p_c t_c + smooth) / (Σ p_c + Σ t_c + smooth),     loss_c = 1 − D_c
///
/// Reductions run over classes: Mean (the default) = (1/C) Σ_c loss_c; Sum = Σ_c loss_c; None = the
/// [C] vector of loss_c. `smooth` (>= 0) keeps absent classes finite: a class absent from both
/// prediction and target has loss 0 when smooth > 0, and 0/0 = NaN when smooth = 0.
///
/// `activation` is applied over the class dim first: Softmax (multi-class logits), Sigmoid
/// (multi-label or binary logits, e.g. C = 1 with a [N, 1, H, W] mask), or None (already
/// probabilities). Differentiable w.r.t. the input; the target is a constant.
///
/// On a GPU the same loss is composed of device ops (sums in T, not double).
///
/// Example: `auto loss = gkd::dice_loss(logits, labels, 1.0f, gkd::DiceActivation::Softmax);`
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "gkd/losses/reduction.hpp"

namespace gkd {

/// What dice_loss applies to its input over the class dim (dim 1) first.
enum class DiceActivation {
  None,     ///< the input already holds probabilities
  Softmax,  ///< softmax over classes (mutually exclusive classes)
  Sigmoid,  ///< elementwise sigmoid (binary / multi-label)
};

/// Soft Dice loss of input [N, C, ...] against dense targets [N, C, ...] or class indices [N, ...].
/// @param smooth     added to numerator and denominator, >= 0
/// @param activation applied to the input first (see DiceActivation)
/// @param reduction  over classes: Mean, Sum or None ([C])
/// @throws gkd::Error for input of rank < 2, a target of neither shape, class indices out of range,
///         or a negative smooth
template <Real T>
Tensor<T> dice_loss(const Tensor<T>& input, const Tensor<T>& target, std::type_identity_t<T> smooth = T(1),
                    DiceActivation activation = DiceActivation::None, Reduction reduction = Reduction::Mean) {
  constexpr std::string_view op = "dice_loss";
  const bool device = detail::on_device(input, target);
  if (!device) detail::check_cpu(input, op), detail::check_cpu(target, op);
  GKD_CHECK(input.dim() >= 2, op, "expects input [N, C, ...], got shape " << to_string(input.shape()));
  GKD_CHECK(smooth >= 0 && std::isfinite(smooth), op,
            "smooth must be non-negative and finite, got " << smooth << " for input of shape " << to_string(input.shape()));
  const bool dense = target.shape() == input.shape();
  if (!dense) {
    Shape indices = input.shape();
    indices.erase(indices.begin() + 1);
    GKD_CHECK(target.shape() == indices, op,
              "target of shape " << to_string(target.shape()) << " matches neither the input shape "
                                 << to_string(input.shape()) << " (masks) nor " << to_string(indices) << " (class indices)");
    detail::check_class_targets(op, input, target, Tensor<T>(), std::numeric_limits<std::int64_t>::min(), !device);
  }
  const Tensor<T> probs = activation == DiceActivation::Softmax   ? softmax(input, 1)
                          : activation == DiceActivation::Sigmoid ? sigmoid(input)
                                                                  : input;
  if (device) {  // the same sums from device ops
    const std::int64_t C = input.shape()[1];
    const Tensor<T> t = dense ? target.detach() : one_hot(target, C, 1);
    std::vector<std::int64_t> dims{0};
    for (std::int64_t k = 2; k < static_cast<std::int64_t>(input.dim()); ++k) dims.push_back(k);
    const Tensor<T> num = add(mul(sum(mul(probs, t), dims), T(2)), T(smooth));
    const Tensor<T> den = add(add(sum(probs, dims), sum(t, dims)), T(smooth));
    return detail::reduce_loss(add(neg(div(num, den)), T(1)), reduction, static_cast<double>(C));
  }
  const detail::ClassLayout lay(input.shape(), 1);
  const std::int64_t N = lay.outer, C = lay.classes, S = lay.inner;
  const Tensor<T> pc = probs.contiguous_copy_if_needed();
  const Tensor<T> tc = target.contiguous_copy_if_needed();
  // target value at (n, c, s): the mask, or [label == c]
  auto target_at = [dense, tp = tc.data(), C, S](std::int64_t n, std::int64_t c, std::int64_t s) {
    return dense ? tp[(n * C + c) * S + s] : T(static_cast<std::int64_t>(tp[n * S + s]) == c);
  };
  std::vector<double> partial(static_cast<std::size_t>(3 * N * C));  // Σ p t, Σ p, Σ t per (n, c)
  {
    const T* p = pc.data();
#pragma omp parallel for if (pc.numel() > detail::kParallelGrain && N * C > 1)
    for (std::int64_t nc = 0; nc < N * C; ++nc) {
      const std::int64_t n = nc / C, c = nc % C;
      const T* row = p + nc * S;
      double inter = 0, psum = 0, tsum = 0;
      for (std::int64_t s = 0; s < S; ++s) {
        const double tv = target_at(n, c, s);
        inter += row[s] * tv;
        psum += row[s];
        tsum += tv;
      }
      partial[static_cast<std::size_t>(3 * nc)] = inter;
      partial[static_cast<std::size_t>(3 * nc + 1)] = psum;
      partial[static_cast<std::size_t>(3 * nc + 2)] = tsum;
    }
  }
  auto ratio = std::make_shared<std::vector<double>>(static_cast<std::size_t>(2 * C));  // numerator, denominator
  Tensor<T> per_class = Tensor<T>::empty({C});
  double total = 0;
  for (std::int64_t c = 0; c < C; ++c) {
    double inter = 0, psum = 0, tsum = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      inter += partial[static_cast<std::size_t>(3 * (n * C + c))];
      psum += partial[static_cast<std::size_t>(3 * (n * C + c) + 1)];
      tsum += partial[static_cast<std::size_t>(3 * (n * C + c) + 2)];
    }
    const double num = 2 * inter + smooth, den = psum + tsum + smooth;
    (*ratio)[static_cast<std::size_t>(2 * c)] = num;
    (*ratio)[static_cast<std::size_t>(2 * c + 1)] = den;
    per_class.data()[c] = static_cast<T>(1 - num / den);
    total += 1 - num / den;
  }
  Tensor<T> out = reduction == Reduction::None  ? per_class
                  : reduction == Reduction::Sum ? Tensor<T>::scalar(static_cast<T>(total))
                                                : Tensor<T>::scalar(static_cast<T>(total / double(C)));
  return record(op, out, {probs}, [pc, tc, target_at, ratio, N, C, S, reduction](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dp = Tensor<T>::empty(pc.shape());
    // d loss_c / d p = (num − 2 t den) / den²
    std::vector<double> a(static_cast<std::size_t>(C)), b(static_cast<std::size_t>(C));
    for (std::int64_t c = 0; c < C; ++c) {
      const double gcls = reduction == Reduction::None  ? double(gc.data()[c])
                          : reduction == Reduction::Sum ? double(gc.data()[0])
                                                        : double(gc.data()[0]) / double(C);
      const double num = (*ratio)[static_cast<std::size_t>(2 * c)], den = (*ratio)[static_cast<std::size_t>(2 * c + 1)];
      a[static_cast<std::size_t>(c)] = gcls * num / (den * den);
      b[static_cast<std::size_t>(c)] = -2 * gcls / den;
    }
    T* d = dp.data();
#pragma omp parallel for if (pc.numel() > detail::kParallelGrain && N * C > 1)
    for (std::int64_t nc = 0; nc < N * C; ++nc) {
      const std::int64_t n = nc / C, c = nc % C;
      const double ac = a[static_cast<std::size_t>(c)], bc = b[static_cast<std::size_t>(c)];
      for (std::int64_t s = 0; s < S; ++s) d[nc * S + s] = static_cast<T>(ac + bc * target_at(n, c, s));
    }
    return std::vector<Tensor<T>>{dp};
  });
}

}  // namespace gkd

GKD_REGISTER_OPS(dice, "dice_loss")
