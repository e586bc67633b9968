// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// DICD cross-reconstruction distillation (GKD, method.md §7): the temperature-scaled pixel-wise KL
/// between the teacher prediction P_T and the two cross predictions P_{S→T}, P_{T→S}, fused with the
/// three softmaxes in one pass over the logits. For logits [B, K, ...] (class dim 1), per pixel
///
///   l = τ² (KL(softmax(t/τ) ‖ softmax(x1/τ)) + KL(softmax(t/τ) ‖ softmax(x2/τ)))
///
/// and the result is the mean over the B·H·W pixels (Reduction::Mean, as `distillation_kl`), their
/// sum (Sum) or the per-pixel map [B, ...] (None). It equals distillation_kl(x1, t, τ) +
/// distillation_kl(x2, t, τ). **Gradients flow to the two cross predictions only**; the teacher
/// prediction is frozen and receives none. The gradient τ (q_k − p) is computed in the same pass as
/// the loss (backward only scales it), with the formula of `gkd/losses/detail/cross_recon_tile.hpp`: the
/// CUDA kernel runs it per pixel, the CPU over blocks of pixels with vectorised float64 exp and log.
/// @code
///   auto l = gkd::cross_recon_kd(teacher_logits, p_s_to_t, p_t_to_s, {.temperature = 4.0});
///   // standalone: loss and gradients for a loss weight of 1
///   double v = gkd::cross_recon_kd_raw(t.data(), x1.data(), x2.data(), B, K, H * W, {}, g1.data(), g2.data());
/// @endcode
#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Core>

#include "gkd/losses/detail/cross_recon_tile.hpp"
#include "gkd/losses/kl_div.hpp"
#include "gkd/ops/elementwise.hpp"
#include "gkd/losses/reduction.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/distill_losses.hpp"
#endif

namespace gkd {

/// Options of `cross_recon_kd`.
struct CrossReconKdOptions {
  double temperature = 1.0;               ///< τ > 0
  Reduction reduction = Reduction::Mean;  ///< Mean over pixels, Sum, or None (per-pixel map)
};

/// DICD on raw contiguous [B, K, P] buffers (P pixels per image). Returns the reduced loss (for None,
/// the sum); writes the per-pixel losses to `loss_map` ([B, P]) when not null, and when `grad1` /
/// `grad2` are not null the gradients of the returned loss (for None: of the sum) w.r.t. x1 / x2.
/// @throws gkd::Error for empty sizes or τ not positive and finite
template <Real T>
double cross_recon_kd_raw(const T* teacher, const T* cross1, const T* cross2, std::int64_t batch, std::int64_t classes,
                          std::int64_t pixels, const CrossReconKdOptions& options = {}, T* grad1 = nullptr,
                          T* grad2 = nullptr, T* loss_map = nullptr) {
  constexpr std::string_view op = "cross_recon_kd";
  GKD_CHECK(batch > 0 && classes > 0 && pixels > 0, op,
            "needs B, K and pixels > 0, got B " << batch << " K " << classes << " pixels " << pixels);
  GKD_CHECK(options.temperature > 0 && std::isfinite(options.temperature), op,
            "temperature must be positive and finite, got " << options.temperature);
  const double tau = options.temperature, inv_tau = 1.0 / tau;
  const double scale = options.reduction == Reduction::Mean ? 1.0 / (double(batch) * double(pixels)) : 1.0;
  // Blocks of up to 256 pixels of one image: for a fixed class those pixels are contiguous, so each
  // sweep of cross_recon_pixel's formula runs over a block at once with vectorised exp and log, in T.
  constexpr std::int64_t kBlock = 256;
  using Column = Eigen::Array<T, Eigen::Dynamic, 1>;
  using Input = Eigen::Map<const Column>;
  const T inv_tau_t = static_cast<T>(inv_tau);
  const std::int64_t per_image = (pixels + kBlock - 1) / kBlock, blocks = batch * per_image;
  std::vector<double> partial(static_cast<std::size_t>(blocks));
#pragma omp parallel if (blocks > 1 && batch * classes * pixels > detail::kParallelGrain)
  {
    Column mt, m1, m2, st, s1, s2, cross, kl;
    Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic> et, e1, e2;  // [pixels of the block, classes]
#pragma omp for schedule(static)
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
      const std::int64_t b = blk / per_image, p0 = (blk % per_image) * kBlock, n = std::min(kBlock, pixels - p0);
      const std::int64_t at = b * classes * pixels + p0;
      const auto row = [&](const T* base, std::int64_t c) { return Input(base + at + c * pixels, n); };
      mt = row(teacher, 0), m1 = row(cross1, 0), m2 = row(cross2, 0);
      for (std::int64_t c = 1; c < classes; ++c) {
        mt = mt.max(row(teacher, c));
        m1 = m1.max(row(cross1, c));
        m2 = m2.max(row(cross2, c));
      }
      et.resize(n, classes), e1.resize(n, classes), e2.resize(n, classes);
      st.setZero(n), s1.setZero(n), s2.setZero(n), cross.setZero(n);
      for (std::int64_t c = 0; c < classes; ++c) {  // centred logits, as in cross_recon_pixel
        const Column a = row(teacher, c) - mt;
        et.col(c) = (a * inv_tau_t).exp();
        e1.col(c) = ((row(cross1, c) - m1) * inv_tau_t).exp();
        e2.col(c) = ((row(cross2, c) - m2) * inv_tau_t).exp();
        st += et.col(c), s1 += e1.col(c), s2 += e2.col(c);
        cross += et.col(c) * ((a - (row(cross1, c) - m1)) + (a - (row(cross2, c) - m2))) * inv_tau_t;
      }
      kl = (cross / st - 2 * st.log() + s1.log() + s2.log()).max(T(0)) * static_cast<T>(tau * tau);
      if (loss_map) Eigen::Map<Column>(loss_map + b * pixels + p0, n) = kl;
      partial[static_cast<std::size_t>(blk)] = kl.template cast<double>().sum();
      const T coef = static_cast<T>(scale * tau);
      for (std::int64_t c = 0; c < classes; ++c) {
        if (grad1) Eigen::Map<Column>(grad1 + at + c * pixels, n) = coef * (e1.col(c) / s1 - et.col(c) / st);
        if (grad2) Eigen::Map<Column>(grad2 + at + c * pixels, n) = coef * (e2.col(c) / s2 - et.col(c) / st);
      }
    }
  }
  return detail::sum_partials(partial, 1, 0) * scale;
}

/// DICD as a differentiable op: teacher, cross1, cross2 logits of one shape [B, K, ...] (K ≥ 1 classes
/// along dim 1). Returns a scalar (Mean, Sum) or the map [B, ...] (None). Gradient to cross1 and
/// cross2 only.
/// @throws gkd::Error for shapes that differ or have fewer than 2 dims, or a bad temperature
template <Real T>
Tensor<T> cross_recon_kd(const Tensor<T>& teacher, const Tensor<T>& cross1, const Tensor<T>& cross2,
                         const CrossReconKdOptions& options = {}) {
  constexpr std::string_view op = "cross_recon_kd";
  GKD_CUDA_DISPATCH(detail::dispatch_device(teacher.device(), detail::dispatch_device(cross1.device(), cross2.device())),
                    op, cross_recon_kd(teacher, cross1, cross2, options));
  detail::check_cpu(teacher, op);
  detail::check_cpu(cross1, op);
  detail::check_cpu(cross2, op);
  GKD_CHECK(teacher.dim() >= 2 && cross1.shape() == teacher.shape() && cross2.shape() == teacher.shape(), op,
            "expects teacher, cross1 and cross2 logits of one shape [B, K, ...], got "
                << to_string(teacher.shape()) << ", " << to_string(cross1.shape()) << ", " << to_string(cross2.shape()));
  const std::int64_t b = teacher.shape()[0], k = teacher.shape()[1];
  const std::int64_t pixels = k > 0 && b > 0 ? teacher.numel() / (b * k) : 0;
  const Tensor<T> tc = teacher.contiguous_copy_if_needed(), c1 = cross1.contiguous_copy_if_needed(),
                  c2 = cross2.contiguous_copy_if_needed();
  const bool g1 = needs_grad(cross1), g2 = needs_grad(cross2);
  Tensor<T> d1 = g1 ? Tensor<T>::empty(teacher.shape()) : Tensor<T>();
  Tensor<T> d2 = g2 ? Tensor<T>::empty(teacher.shape()) : Tensor<T>();
  Shape map_shape = teacher.shape();
  map_shape.erase(map_shape.begin() + 1);
  Tensor<T> map = options.reduction == Reduction::None ? Tensor<T>::empty(map_shape) : Tensor<T>();
  const double loss = cross_recon_kd_raw(tc.data(), c1.data(), c2.data(), b, k, pixels, options, g1 ? d1.data() : nullptr,
                                         g2 ? d2.data() : nullptr, map.defined() ? map.data() : nullptr);
  Tensor<T> out = map.defined() ? map : Tensor<T>::scalar(static_cast<T>(loss));
  if (!g1 && !g2) return out;
  const bool per_pixel = options.reduction == Reduction::None;
  return record(op, out, {cross1, cross2}, [d1, d2, per_pixel, b, k, pixels](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    const T* gp = gc.data();
    std::vector<Tensor<T>> grads(2);
    const Tensor<T>* stored[2] = {&d1, &d2};
    for (int i = 0; i < 2; ++i) {
      if (!stored[i]->defined()) continue;
      grads[i] = Tensor<T>::empty(stored[i]->shape());
      const T* src = stored[i]->data();
      T* dst = grads[i].data();
      const std::int64_t n = b * k * pixels;
#pragma omp parallel for if (n > detail::kParallelGrain)
      for (std::int64_t e = 0; e < n; ++e)
        dst[e] = src[e] * (per_pixel ? gp[(e / (k * pixels)) * pixels + e % pixels] : gp[0]);
    }
    return grads;
  });
}

/// The unfused composition for tests: distillation_kl(x1, t, τ) + distillation_kl(x2, t, τ) with the
/// teacher detached (softmax and log-softmax maps materialised by the generic kernels).
namespace reference {
template <Real T>
Tensor<T> cross_recon_kd(const Tensor<T>& teacher, const Tensor<T>& cross1, const Tensor<T>& cross2,
                         const CrossReconKdOptions& options = {}) {
  const T tau = static_cast<T>(options.temperature);
  return distillation_kl(cross1, teacher.detach(), tau, 1, options.reduction) +
         distillation_kl(cross2, teacher.detach(), tau, 1, options.reduction);
}
}  // namespace reference

}  // namespace gkd

GKD_REGISTER_OPS(cross_recon_kd, "cross_recon_kd")
