// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Attention transfer (AT, Zagoruyko & Komodakis, ICLR 2017) and EMKD's importance-map distillation
/// (IMD, Qin et al. TMI 2021), composed from differentiable ops (autodiff gives the gradient).
///
/// Attention map of a feature F [B, C, H, W] (flattened per sample, [B, H·W]):
///
///   a(F) = normalize_L2( mean_c |F|^p ),   the norm over the H·W positions (F.normalize, eps)
///
/// (the official AT code writes F.pow(p); |F|^p is the same for even p and defined for any p > 0).
/// The student feature is bilinearly resized (align_corners = false) to the teacher's H × W first
/// when the sizes differ; channel counts may differ. Loss:
///
///   mean over b and positions of (a(F_s) − a(F_t))²          (default: AT's `(at(s) − at(t)).pow(2).mean()`)
///   (1 / B) Σ_b Σ_positions (a(F_s) − a(F_t))²                 (sum_over_positions: EMKD's IMD, = H·W × the mean)
///
/// EMKD's IMD uses p = 4 with sum_over_positions on its low- and high-level features. The teacher map
/// is detached: no gradient reaches the teacher feature. Returns a scalar.
/// @code
///   auto fs = gkd::Tensor<float>::empty({8, 32, 32, 32}), ft = gkd::Tensor<float>::empty({8, 128, 64, 64});
///   auto at  = gkd::attention_transfer_loss(fs, ft);                                   // AT, p = 2
///   auto imd = gkd::attention_transfer_loss(fs, ft, {.p = 4, .sum_over_positions = true});  // EMKD
/// @endcode
#include <cmath>
#include <string_view>

#include "gkd/ops/reduce.hpp"
#include "gkd/ops/similarity.hpp"
#include "gkd/ops/upsample.hpp"

namespace gkd {

/// Options of `attention_transfer_loss`.
struct AttentionTransferOptions {
  double p = 2.0;                   ///< exponent of |F|^p, finite and > 0
  bool sum_over_positions = false;  ///< false: mean over batch and positions (AT); true: Σ positions, mean batch (IMD)
  double eps = 1e-12;               ///< norm clamp of the L2 normalisation (F.normalize's default), >= 0
};

namespace detail {

template <Real T>
void check_attention_feature(std::string_view op, const Tensor<T>& f, std::string_view what) {
  GKD_CHECK(f.dim() == 4, op, what << " feature must be 4-D [B, C, H, W], got " << to_string(f.shape()));
  GKD_CHECK(f.numel() > 0, op, what << " feature of shape " << to_string(f.shape()) << " is empty");
}

}  // namespace detail

/// a(F) = normalize_L2(mean_c |F|^p) over positions: F [B, C, H, W] -> [B, H·W]. Differentiable.
/// @throws gkd::Error unless F is a non-empty 4-D tensor, p finite and > 0, eps >= 0
template <Real T>
Tensor<T> attention_map(const Tensor<T>& feature, double p = 2.0, double eps = 1e-12) {
  constexpr std::string_view op = "attention_map";
  detail::check_attention_feature(op, feature, "the");
  GKD_CHECK(p > 0 && std::isfinite(p), op, "p must be positive and finite, got " << p << " for feature of shape "
                                                                                   << to_string(feature.shape()));
  GKD_CHECK(eps >= 0 && std::isfinite(eps), op, "eps must be finite and >= 0, got " << eps);
  const auto& s = feature.shape();
  const Tensor<T> energy = mean(pow(abs(feature), static_cast<T>(p)), {1});  // [B, H, W]
  return normalize(energy.reshape({s[0], s[2] * s[3]}), 1, static_cast<T>(eps));
}

/// AT / IMD loss between a student feature [B, C_s, H_s, W_s] and a teacher feature [B, C_t, H, W]
/// (see the file comment). The teacher is detached.
/// @throws gkd::Error for non-4-D or empty features, different batch sizes, or bad options
template <Real T>
Tensor<T> attention_transfer_loss(const Tensor<T>& student, const Tensor<T>& teacher,
                                  const AttentionTransferOptions& options = {}) {
  constexpr std::string_view op = "attention_transfer_loss";
  detail::check_attention_feature(op, student, "student");
  detail::check_attention_feature(op, teacher, "teacher");
  GKD_CHECK(student.shape()[0] == teacher.shape()[0], op,
            "student feature of shape " << to_string(student.shape()) << " and teacher feature of shape "
                                        << to_string(teacher.shape()) << " have different batch sizes");
  GKD_CHECK(options.p > 0 && std::isfinite(options.p), op,
            "p must be positive and finite, got " << options.p << " for features " << to_string(student.shape())
                                                  << " and " << to_string(teacher.shape()));
  GKD_CHECK(options.eps >= 0 && std::isfinite(options.eps), op, "eps must be finite and >= 0, got " << options.eps);
  const Size2 size(teacher.shape()[2], teacher.shape()[3]);
  const bool resize = student.shape()[2] != size.h || student.shape()[3] != size.w;
  const Tensor<T> fs = resize ? upsample_bilinear2d(student, size, false) : student;
  const Tensor<T> diff = attention_map(fs, options.p, options.eps) - attention_map(teacher.detach(), options.p, options.eps);
  const Tensor<T> sq = diff * diff;
  return options.sum_over_positions ? sum(sq) / static_cast<T>(student.shape()[0]) : mean(sq);
}

}  // namespace gkd
