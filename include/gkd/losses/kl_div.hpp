// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Kullback–Leibler divergence: `kl_div` (F.kl_div on log-probabilities) and `distillation_kl`, the
/// temperature-scaled distillation loss of Hinton et al. as used for segmentation KD.
///
/// kl_div(input = log q̂, target = p):  l_i = p_i (log p_i − input_i)  (0 where p_i = 0, PyTorch's
/// xlogy), or exp(t_i)(t_i − input_i) with log_target. Reductions: None, Sum, Mean (Σ / numel) and
/// BatchMean (Σ / input.size(0), the true KL per sample for [N, C] inputs).
///
/// distillation_kl(s, t, T, dim): with p = softmax(t / T) (teacher) and q = softmax(s / T) (student)
/// along the class dim `dim`, per position (every index but `dim`)
///
///   l_pos = T² · Σ_c p_c (log p_c − log q_c)
///
/// and the result is the MEAN over positions (Reduction::Mean, the default): T² · Σ / (numel / C).
/// That is Hinton's KD (sum over classes, times T²) averaged over every other position — for
/// [N, C] logits it equals T² · F.kl_div(log q, p, reduction="batchmean"); for [N, C, H, W] maps it
/// divides by N·H·W (PyTorch's batchmean would divide by N only). Sum gives Σ over positions, None
/// the per-position map (the input shape without `dim`). It is one fused kernel over the two logit
/// maps (blocks of pixels, OpenMP over blocks; per-element math in double, results rounded to T) and
/// is differentiable w.r.t. both logits (detach the teacher for classic KD). On a GPU it is composed of
/// device ops (log_softmax, exp, mul, sum) in T.
///
/// Example: `auto kd = gkd::distillation_kl(student_logits, teacher_logits.detach(), 4.0f);`
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "gkd/losses/reduction.hpp"

namespace gkd {

/// kl_div's reductions: the shared ones plus PyTorch's "batchmean".
enum class KLReduction {
  None,       ///< per element
  Mean,       ///< Σ / numel (PyTorch's "mean": NOT the mathematical KL; prefer BatchMean)
  Sum,        ///< Σ
  BatchMean,  ///< Σ / input.size(0)
};

/// F.kl_div(input, target, reduction, log_target): input holds log-probabilities, target
/// probabilities (or log-probabilities with `log_target`), equally shaped. The target is a constant.
/// On a GPU the same loss is composed of device ops (sums in T, not double).
/// @throws gkd::Error when the shapes differ, or BatchMean on a 0-d input
template <Real T>
Tensor<T> kl_div(const Tensor<T>& input, const Tensor<T>& target, KLReduction reduction = KLReduction::Mean,
                 bool log_target = false) {
  detail::check_same_shape("kl_div", input, target);
  GKD_CHECK(reduction != KLReduction::BatchMean || input.dim() > 0, "kl_div",
            "batchmean needs a batch dim, got input of shape " << to_string(input.shape()));
  const Reduction r = reduction == KLReduction::None  ? Reduction::None
                      : reduction == KLReduction::Sum ? Reduction::Sum
                                                      : Reduction::Mean;
  const double divisor =
      reduction == KLReduction::BatchMean ? static_cast<double>(input.shape()[0]) : static_cast<double>(input.numel());
  if (detail::on_device(input, target)) {  // the same elementwise loss from device ops (in T)
    const Tensor<T> t = target.detach();
    if (log_target) return detail::reduce_loss(mul(exp(t), sub(t, input)), r, divisor);
    // xlogy(t, t) = t log t, and 0 where t == 0: log(t + [t == 0]) is log(1) = 0 there.
    const Tensor<T> zero = Tensor<T>::zeros({}, t.device());
    return detail::reduce_loss(sub(mul(t, log(add(t, eq(t, zero)))), mul(t, input)), r, divisor);
  }
  if (log_target)
    return detail::pointwise_loss(
        "kl_div", input, target, r, divisor, [](std::int64_t, T x, T t) { return std::exp(t) * (t - x); },
        [](std::int64_t, T, T t) { return -std::exp(t); }, nullptr);
  return detail::pointwise_loss(
      "kl_div", input, target, r, divisor,
      [](std::int64_t, T x, T t) { return (t == T(0) ? T(0) : t * std::log(t)) - t * x; },
      [](std::int64_t, T, T t) { return -t; }, nullptr);
}

/// kl_div with one of the shared reductions (Mean is PyTorch's elementwise "mean").
template <Real T>
Tensor<T> kl_div(const Tensor<T>& input, const Tensor<T>& target, Reduction reduction, bool log_target = false) {
  return kl_div(input, target,
                reduction == Reduction::None  ? KLReduction::None
                : reduction == Reduction::Sum ? KLReduction::Sum
                                              : KLReduction::Mean,
                log_target);
}

/// T² · KL(softmax(teacher / T) ‖ softmax(student / T)) over the class dim `dim`, averaged over all
/// other positions (see the file comment for the exact normalisation).
/// @throws gkd::Error when the shapes differ, for a bad dim, or unless temperature > 0 (and finite)
template <Real T>
Tensor<T> distillation_kl(const Tensor<T>& student_logits, const Tensor<T>& teacher_logits,
                          std::type_identity_t<T> temperature, std::int64_t dim = 1,
                          Reduction reduction = Reduction::Mean) {
  constexpr std::string_view op = "distillation_kl";
  GKD_CHECK(student_logits.defined() && teacher_logits.defined(), op, "student or teacher logits are undefined");
  GKD_CHECK(student_logits.shape() == teacher_logits.shape(), op,
            "student logits of shape " << to_string(student_logits.shape()) << " and teacher logits of shape "
                                       << to_string(teacher_logits.shape()) << " must have the same shape");
  GKD_CHECK(temperature > 0 && std::isfinite(temperature), op,
            "temperature must be positive and finite, got " << temperature << " for logits of shape "
                                                            << to_string(student_logits.shape()));
  GKD_CHECK(student_logits.dim() > 0, op, "needs a class dim, got logits of shape " << to_string(student_logits.shape()));
  const std::size_t d = normalize_dim(dim, student_logits.dim(), op);
  GKD_CHECK(student_logits.shape()[d] > 0, op,
            "class dim " << d << " of logits of shape " << to_string(student_logits.shape()) << " is empty");
  if (detail::on_device(student_logits, teacher_logits)) {  // the same loss from device ops (float, not double)
    const auto cd = static_cast<std::int64_t>(d);
    const T inv = T(1) / temperature;
    const Tensor<T> log_q = log_softmax(mul(student_logits, inv), cd), log_p = log_softmax(mul(teacher_logits, inv), cd);
    const Tensor<T> kl = mul(sum(mul(exp(log_p), sub(log_p, log_q)), {cd}), temperature * temperature);
    return detail::reduce_loss(kl, reduction, static_cast<double>(kl.numel()));
  }
  detail::check_cpu(student_logits, op);
  detail::check_cpu(teacher_logits, op);
  const detail::ClassLayout lay(student_logits.shape(), d);
  const Tensor<T> sc = student_logits.contiguous_copy_if_needed();
  const Tensor<T> tc = teacher_logits.contiguous_copy_if_needed();
  const double temp = temperature, inv_t = 1.0 / temp;
  // per position: logsumexp of s / T and of t / T, and the KL (double: see ClassLayout::Acc)
  using Acc = detail::ClassLayout::Acc;
  auto saved = std::make_shared<std::vector<Acc>>(static_cast<std::size_t>(3 * lay.positions()));
  std::vector<double> partial(static_cast<std::size_t>(lay.blocks()));
  Shape map_shape = student_logits.shape();
  map_shape.erase(map_shape.begin() + static_cast<std::ptrdiff_t>(d));
  Tensor<T> map = reduction == Reduction::None ? Tensor<T>::empty(map_shape) : Tensor<T>();
  {
    const T* s = sc.data();
    const T* t = tc.data();
    Acc* sv = saved->data();
    T* mp = map.defined() ? map.data() : nullptr;
    const std::int64_t C = lay.classes, S = lay.inner;
    lay.for_each_block([&](std::int64_t b, std::int64_t o, std::int64_t i0, std::int64_t i1) {
      constexpr std::int64_t B = detail::ClassLayout::kBlock;
      Acc ms[B], mt[B], ss[B], st[B], kl[B];
      const std::int64_t n = i1 - i0;
      const T* sb = s + o * C * S + i0;
      const T* tb = t + o * C * S + i0;
      for (std::int64_t j = 0; j < n; ++j) {
        ms[j] = sb[j];
        mt[j] = tb[j];
      }
      for (std::int64_t c = 1; c < C; ++c)
        for (std::int64_t j = 0; j < n; ++j) {
          ms[j] = std::max(ms[j], Acc(sb[c * S + j]));
          mt[j] = std::max(mt[j], Acc(tb[c * S + j]));
        }
      for (std::int64_t j = 0; j < n; ++j) ss[j] = st[j] = kl[j] = 0;
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t j = 0; j < n; ++j) {
          ss[j] += std::exp((sb[c * S + j] - ms[j]) * inv_t);
          st[j] += std::exp((tb[c * S + j] - mt[j]) * inv_t);
        }
      for (std::int64_t j = 0; j < n; ++j) {  // logsumexp in units of logits / T
        ss[j] = ms[j] * inv_t + std::log(ss[j]);
        st[j] = mt[j] * inv_t + std::log(st[j]);
      }
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t j = 0; j < n; ++j) {
          const Acc log_p = tb[c * S + j] * inv_t - st[j], log_q = sb[c * S + j] * inv_t - ss[j];
          kl[j] += std::exp(log_p) * (log_p - log_q);
        }
      double sum = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t p = o * S + i0 + j;
        sv[3 * p] = ss[j];
        sv[3 * p + 1] = st[j];
        sv[3 * p + 2] = kl[j];
        const Acc l = temp * temp * kl[j];
        sum += l;
        if (mp) mp[p] = static_cast<T>(l);
      }
      partial[static_cast<std::size_t>(b)] = sum;
    });
  }
  const double total = detail::sum_partials(partial, 1, 0);
  const auto positions = static_cast<double>(lay.positions());
  Tensor<T> out = reduction == Reduction::None  ? map
                  : reduction == Reduction::Sum ? Tensor<T>::scalar(static_cast<T>(total))
                                                : Tensor<T>::scalar(static_cast<T>(total / positions));
  const bool gs = needs_grad(student_logits), gt = needs_grad(teacher_logits);
  return record(op, out, {student_logits, teacher_logits},
                [sc, tc, saved, lay, temp, inv_t, reduction, positions, gs, gt](const Tensor<T>& g) {
                  const Tensor<T> gc = g.contiguous_copy_if_needed();
                  Tensor<T> ds = gs ? Tensor<T>::empty(sc.shape()) : Tensor<T>();
                  Tensor<T> dt = gt ? Tensor<T>::empty(tc.shape()) : Tensor<T>();
                  const T* s = sc.data();
                  const T* t = tc.data();
                  const Acc* sv = saved->data();
                  const T* gp = gc.data();
                  T* pds = gs ? ds.data() : nullptr;
                  T* pdt = gt ? dt.data() : nullptr;
                  const bool per_position = reduction == Reduction::None;
                  const Acc scale = per_position                   ? 0.0
                                    : reduction == Reduction::Mean ? double(gp[0]) / positions
                                                                   : double(gp[0]);
                  const std::int64_t C = lay.classes, S = lay.inner;
                  // d l / d s_c = T (q_c − p_c);  d l / d t_c = T p_c (log p_c − log q_c − KL)
                  lay.for_each_block([&](std::int64_t, std::int64_t o, std::int64_t i0, std::int64_t i1) {
                    constexpr std::int64_t B = detail::ClassLayout::kBlock;
                    Acc coef[B];
                    const std::int64_t n = i1 - i0, p0 = o * S + i0, base = o * C * S + i0;
                    for (std::int64_t j = 0; j < n; ++j) coef[j] = (per_position ? Acc(gp[p0 + j]) : scale) * temp;
                    for (std::int64_t c = 0; c < C; ++c)
                      for (std::int64_t j = 0; j < n; ++j) {
                        const std::int64_t e = base + c * S + j, p = p0 + j;
                        const Acc log_q = s[e] * inv_t - sv[3 * p], log_p = t[e] * inv_t - sv[3 * p + 1];
                        const Acc pc = std::exp(log_p);
                        if (pds) pds[e] = static_cast<T>(coef[j] * (std::exp(log_q) - pc));
                        if (pdt) pdt[e] = static_cast<T>(coef[j] * pc * (log_p - log_q - sv[3 * p + 2]));
                      }
                  });
                  return std::vector<Tensor<T>>{ds, dt};
                });
}

}  // namespace gkd

GKD_REGISTER_OPS(kl_div, "kl_div", "distillation_kl")
