// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Cross-entropy on logits and negative log-likelihood on log-probabilities, for classification
/// ([N, C]) and dense prediction ([N, C, d1, ...], e.g. [N, C, H, W] segmentation), with PyTorch's
/// semantics (F.cross_entropy, F.nll_loss):
///
///   l_i = w[t_i] · (logsumexp_c x_{i,c} − x_{i,t_i})      (cross_entropy; nll_loss: −w[t_i] · x_{i,t_i})
///
/// over positions i (every index but the class dim), with w = 1 when no class weights are given and
/// l_i = 0 where t_i == ignore_index. Reductions: None gives the [N, d1, ...] map; Sum gives Σ l_i;
/// Mean gives Σ l_i / Σ w[t_i] over non-ignored positions — PyTorch's weighted mean (NaN when every
/// position is ignored, as in PyTorch).
///
/// Targets are class indices stored as T (integer values in [0, C) or ignore_index), validated, and
/// not differentiated; class weights are constants. cross_entropy is one fused kernel: the forward
/// makes one pass over the logits (blocks of pixels, OpenMP over blocks) and keeps only the
/// per-pixel logsumexp; the backward makes one pass writing softmax − one-hot. Per-element math runs
/// in double whatever T is; results are rounded to T.
///
/// Example: `auto loss = gkd::cross_entropy(logits, labels, {}, 255);   // [N, C, H, W], [N, H, W]`
#include <memory>
#include <vector>

#include "gkd/losses/reduction.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/losses.hpp"
#endif

namespace gkd {

namespace detail {

/// Class-index targets of a loss on a GPU, as device tensors of the target's shape (constants).
template <Real T>
struct DeviceClassTargets {
  Tensor<T> counted;  ///< 1 where target != ignore_index, else 0
  Tensor<T> safe;     ///< the target, with class 0 where ignored (safe to gather with)
  Tensor<T> weight;   ///< class_weight[target] where counted (1 without class weights), 0 where ignored
};

/// The DeviceClassTargets of validated targets (check_class_targets) on a GPU, from device ops.
template <Real T>
DeviceClassTargets<T> device_class_targets(const Tensor<T>& target, const Tensor<T>& class_weight,
                                           std::int64_t ignore_index) {
  const Device device = target.device();
  const Tensor<T> t = target.detach();
  const Tensor<T> zero = Tensor<T>::zeros({}, device);
  // Validated targets are integers, so comparing values is comparing the integer class indices.
  const Tensor<T> counted =
      sub(Tensor<T>::ones({}, device), eq(t, Tensor<T>::full({}, static_cast<T>(ignore_index), device)));
  const Tensor<T> safe = where(counted, t, zero);
  const Tensor<T> weight =
      class_weight.defined()
          ? where(counted, gather(class_weight.detach(), 0, safe.reshape({-1})).reshape(t.shape()), zero)
          : counted;
  return {counted, safe, weight};
}

/// x[n, safe[n, ...], ...] of an [N, C, ...] map for class indices safe [N, ...] (differentiable in x).
template <Real T>
Tensor<T> pick_classes(const Tensor<T>& x, const Tensor<T>& safe) {
  return gather(x, 1, safe.unsqueeze(1)).squeeze(1);
}

}  // namespace detail

/// Cross-entropy of logits [N, C, ...] against class indices [N, ...] (F.cross_entropy without
/// label smoothing or probability targets).
/// @param weight       optional class weights [C]
/// @param ignore_index target value whose positions contribute nothing (and do not count in Mean)
/// @throws gkd::Error for input of rank < 2, a target shape mismatch, weights not of shape [C], or a
///         target that is not an integer in [0, C) nor ignore_index
template <Real T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<T>& target, const Tensor<T>& weight = Tensor<T>(),
                        std::int64_t ignore_index = -100, Reduction reduction = Reduction::Mean) {
  GKD_CUDA_DISPATCH(logits.device(), "cross_entropy", cross_entropy(logits, target, weight, ignore_index, reduction));
  detail::check_class_targets("cross_entropy", logits, target, weight, ignore_index);
  const detail::ClassLayout lay(logits.shape(), 1);
  const Tensor<T> xc = logits.contiguous_copy_if_needed();
  const Tensor<T> tc = target.contiguous_copy_if_needed();
  const Tensor<T> wc = weight.defined() ? weight.contiguous_copy_if_needed() : Tensor<T>();
  using Acc = detail::ClassLayout::Acc;
  auto lse = std::make_shared<std::vector<Acc>>(static_cast<std::size_t>(lay.positions()));
  std::vector<double> partial(static_cast<std::size_t>(2 * lay.blocks()));
  Tensor<T> map = reduction == Reduction::None ? Tensor<T>::empty(target.shape()) : Tensor<T>();
  {
    const T* x = xc.data();
    const T* t = tc.data();
    const T* w = wc.defined() ? wc.data() : nullptr;
    Acc* lp = lse->data();
    T* mp = map.defined() ? map.data() : nullptr;
    const std::int64_t C = lay.classes, S = lay.inner;
    lay.for_each_block([&](std::int64_t b, std::int64_t o, std::int64_t i0, std::int64_t i1) {
      const std::int64_t n = i1 - i0;
      const T* xb = x + o * C * S + i0;
      detail::block_log_sum_exp(xb, n, C, S, lp + o * S + i0);
      double loss_sum = 0, weight_sum = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t p = o * S + i0 + j;
        const Acc l = lp[p];
        const auto k = static_cast<std::int64_t>(t[p]);
        Acc loss = 0;
        if (k != ignore_index) {
          const Acc wk = w ? Acc(w[k]) : 1.0;
          loss = wk * (l - xb[k * S + j]);
          loss_sum += loss;
          weight_sum += wk;
        }
        if (mp) mp[p] = static_cast<T>(loss);
      }
      partial[static_cast<std::size_t>(2 * b)] = loss_sum;
      partial[static_cast<std::size_t>(2 * b + 1)] = weight_sum;
    });
  }
  const double loss_sum = detail::sum_partials(partial, 2, 0), weight_sum = detail::sum_partials(partial, 2, 1);
  Tensor<T> out = reduction == Reduction::None  ? map
                  : reduction == Reduction::Sum ? Tensor<T>::scalar(static_cast<T>(loss_sum))
                                                : Tensor<T>::scalar(static_cast<T>(loss_sum / weight_sum));
  return record("cross_entropy", out, {logits},
                [xc, tc, wc, lse, lay, reduction, weight_sum, ignore_index](const Tensor<T>& g) {
                  const Tensor<T> gc = g.contiguous_copy_if_needed();
                  Tensor<T> dx = Tensor<T>::empty(xc.shape());
                  const T* x = xc.data();
                  const T* t = tc.data();
                  const T* w = wc.defined() ? wc.data() : nullptr;
                  const Acc* lp = lse->data();
                  const T* gp = gc.data();
                  T* d = dx.data();
                  const bool per_position = reduction == Reduction::None;
                  const Acc scale = per_position                   ? 0.0
                                    : reduction == Reduction::Mean ? double(gp[0]) / weight_sum
                                                                   : double(gp[0]);
                  const std::int64_t C = lay.classes, S = lay.inner;
                  // dx_c = g_i w[t_i] (softmax_c − [c == t_i])
                  lay.for_each_block([&](std::int64_t, std::int64_t o, std::int64_t i0, std::int64_t i1) {
                    constexpr std::int64_t B = detail::ClassLayout::kBlock;
                    Acc coef[B];
                    const std::int64_t n = i1 - i0, p0 = o * S + i0;
                    for (std::int64_t j = 0; j < n; ++j) {
                      const auto k = static_cast<std::int64_t>(t[p0 + j]);
                      coef[j] = k == ignore_index ? 0.0 : (per_position ? Acc(gp[p0 + j]) : scale) * (w ? Acc(w[k]) : 1.0);
                    }
                    const T* xb = x + o * C * S + i0;
                    T* db = d + o * C * S + i0;
                    for (std::int64_t c = 0; c < C; ++c)
                      for (std::int64_t j = 0; j < n; ++j)
                        db[c * S + j] = static_cast<T>(coef[j] * std::exp(xb[c * S + j] - lp[p0 + j]));
                    for (std::int64_t j = 0; j < n; ++j) {  // softmax_t − 1, formed in Acc before rounding
                      const auto k = static_cast<std::int64_t>(t[p0 + j]);
                      if (k != ignore_index)
                        db[k * S + j] = static_cast<T>(coef[j] * (std::exp(xb[k * S + j] - lp[p0 + j]) - 1.0));
                    }
                  });
                  return std::vector<Tensor<T>>{dx};
                });
}

/// Negative log-likelihood of log-probabilities [N, C, ...] (e.g. log_softmax output) against class
/// indices [N, ...] (F.nll_loss); same weights, ignore_index and reductions as cross_entropy. On a
/// GPU it is composed of device ops (gather, where, sums in T); the targets are validated through one
/// host copy.
/// @throws gkd::Error as cross_entropy
template <Real T>
Tensor<T> nll_loss(const Tensor<T>& log_probs, const Tensor<T>& target, const Tensor<T>& weight = Tensor<T>(),
                   std::int64_t ignore_index = -100, Reduction reduction = Reduction::Mean) {
  const bool device = detail::on_device(log_probs, target);
  detail::check_class_targets("nll_loss", log_probs, target, weight, ignore_index, !device);
  if (device) {
    const auto targets = detail::device_class_targets(target, weight, ignore_index);
    const Tensor<T> zero = Tensor<T>::zeros({}, log_probs.device());
    const Tensor<T> l =
        where(targets.counted, neg(mul(targets.weight, detail::pick_classes(log_probs, targets.safe))), zero);
    if (reduction == Reduction::None) return l;
    const Tensor<T> total = sum(l);
    return reduction == Reduction::Sum ? total : div(total, sum(targets.weight));
  }
  const detail::ClassLayout lay(log_probs.shape(), 1);
  const Tensor<T> xc = log_probs.contiguous_copy_if_needed();
  const Tensor<T> tc = target.contiguous_copy_if_needed();
  const Tensor<T> wc = weight.defined() ? weight.contiguous_copy_if_needed() : Tensor<T>();
  std::vector<double> partial(static_cast<std::size_t>(2 * lay.blocks()));
  Tensor<T> map = reduction == Reduction::None ? Tensor<T>::empty(target.shape()) : Tensor<T>();
  {
    const T* x = xc.data();
    const T* t = tc.data();
    const T* w = wc.defined() ? wc.data() : nullptr;
    T* mp = map.defined() ? map.data() : nullptr;
    const std::int64_t C = lay.classes, S = lay.inner;
    lay.for_each_block([&](std::int64_t b, std::int64_t o, std::int64_t i0, std::int64_t i1) {
      double loss_sum = 0, weight_sum = 0;
      for (std::int64_t i = i0; i < i1; ++i) {
        const std::int64_t p = o * S + i;
        const auto k = static_cast<std::int64_t>(t[p]);
        T loss = 0;
        if (k != ignore_index) {
          const T wk = w ? w[k] : T(1);
          loss = -wk * x[(o * C + k) * S + i];
          loss_sum += loss;
          weight_sum += wk;
        }
        if (mp) mp[p] = loss;
      }
      partial[static_cast<std::size_t>(2 * b)] = loss_sum;
      partial[static_cast<std::size_t>(2 * b + 1)] = weight_sum;
    });
  }
  const double loss_sum = detail::sum_partials(partial, 2, 0), weight_sum = detail::sum_partials(partial, 2, 1);
  Tensor<T> out = reduction == Reduction::None  ? map
                  : reduction == Reduction::Sum ? Tensor<T>::scalar(static_cast<T>(loss_sum))
                                                : Tensor<T>::scalar(static_cast<T>(loss_sum / weight_sum));
  return record("nll_loss", out, {log_probs}, [tc, wc, lay, shape = xc.shape(), reduction, weight_sum, ignore_index](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::zeros(shape);
    const T* t = tc.data();
    const T* w = wc.defined() ? wc.data() : nullptr;
    const T* gp = gc.data();
    T* d = dx.data();
    const bool per_position = reduction == Reduction::None;
    const T scale = per_position                     ? T(0)
                    : reduction == Reduction::Mean ? static_cast<T>(double(gp[0]) / weight_sum)
                                                     : gp[0];
    const std::int64_t C = lay.classes, S = lay.inner;
    lay.for_each_block([&](std::int64_t, std::int64_t o, std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) {
        const std::int64_t p = o * S + i;
        const auto k = static_cast<std::int64_t>(t[p]);
        if (k != ignore_index) d[(o * C + k) * S + i] = -(per_position ? gp[p] : scale) * (w ? w[k] : T(1));
      }
    });
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace gkd

GKD_REGISTER_OPS(cross_entropy, "cross_entropy", "nll_loss")
