// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Channel-wise distillation (CWD, Shu et al., ICCV 2021) for dense predictions, composed from
/// `distillation_kl` (autodiff gives the gradient).
///
/// For student and teacher maps y [B, C, H, W] of equal shape (logits or features), each channel is
/// turned into a distribution over its H·W positions, φ(y)_{b,c} = softmax_{h,w}(y_{b,c} / τ), and
///
///   L = τ² / (B·C) · Σ_{b,c} KL(φ(t)_{b,c} ‖ φ(s)_{b,c})
///
/// (the reference implementation: Σ over all of softmax(t/τ)·(log_softmax(t/τ) − log_softmax(s/τ))·τ²
/// divided by B·C). τ defaults to 4 (our choice for segmentation logits); τ = 1 is also in common use,
/// so pass it explicitly when reproducing a given setup. The teacher is detached (no gradient reaches
/// it). Returns a scalar.
/// @code
///   auto ls = gkd::Tensor<float>::empty({8, 2, 64, 64}), lt = gkd::Tensor<float>::empty({8, 2, 64, 64});
///   auto cwd = gkd::channel_wise_kd_loss(ls, lt);        // τ = 4
///   auto cwd1 = gkd::channel_wise_kd_loss(ls, lt, 1.f);  // τ = 1
/// @endcode
#include <cmath>
#include <string_view>
#include <type_traits>

#include "gkd/losses/kl_div.hpp"

namespace gkd {

/// CWD loss τ²/(B·C) Σ_{b,c} KL(softmax_hw(t/τ) ‖ softmax_hw(s/τ)), teacher detached.
/// @throws gkd::Error unless both maps are non-empty 4-D tensors of the same shape and τ is positive and finite
template <Real T>
Tensor<T> channel_wise_kd_loss(const Tensor<T>& student, const Tensor<T>& teacher,
                               std::type_identity_t<T> temperature = T(4)) {
  constexpr std::string_view op = "channel_wise_kd_loss";
  GKD_CHECK(student.dim() == 4 && student.numel() > 0, op,
            "student map must be non-empty 4-D [B, C, H, W], got " << to_string(student.shape()));
  GKD_CHECK(student.shape() == teacher.shape(), op,
            "student map of shape " << to_string(student.shape()) << " and teacher map of shape "
                                    << to_string(teacher.shape()) << " must have the same shape");
  GKD_CHECK(temperature > 0 && std::isfinite(temperature), op,
            "temperature must be positive and finite, got " << temperature << " for maps of shape "
                                                            << to_string(student.shape()));
  const auto& s = student.shape();
  const Shape rows{s[0], s[1], s[2] * s[3]};
  // distillation_kl over dim 2 (the positions) averages over the B·C (b, c) rows and scales by τ².
  return distillation_kl(student.reshape(rows), teacher.detach().reshape(rows), temperature, 2, Reduction::Mean);
}

}  // namespace gkd
