// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Intra-class feature variation distillation (IFVD, Wang et al., ECCV 2020), composed from
/// differentiable ops (autodiff gives the gradient).
///
/// Labels [B, H0, W0] hold class indices (integer values stored as T, each in [0, classes)); they
/// are nearest-resized (F.interpolate mode "nearest") to the feature's H × W. For each sample b and
/// each class k present there, the prototype is the mean feature of the pixels labelled k,
///
///   μ_{b,k} = Σ_{p: label(p) = k} F_b(p) / #{p: label(p) = k}          (gradient flows through μ)
///
/// and the IFV map is the cosine of every pixel's feature with its own class prototype,
///
///   M_b(p) = cos(F_b(p), μ_{b,label(p)})                  (F.cosine_similarity along C, eps)   -> [B, H, W]
///
/// Loss between a student feature [B, C_s, H_s, W_s] and a teacher feature [B, C_t, H, W]:
///
///   L = mean over b and the H·W pixels of (M(F_s) − M(F_t))²
///
/// Channel counts may differ. When the student's spatial size differs from the teacher's, the
/// student feature is bilinearly resized (align_corners = false) to the teacher's H × W first, and
/// both maps use the labels resized to H × W. The teacher map is detached (no gradient reaches the
/// teacher feature). Unlike the official code (which adds 1e-6 to the pixel count and lets pixels
/// with an out-of-range label such as 255 keep their own feature), counts are exact and every label
/// must be a valid class: map ignored pixels to a class first. Returns a scalar.
/// @code
///   auto fs = gkd::Tensor<float>::empty({4, 32, 32, 32}), ft = gkd::Tensor<float>::empty({4, 64, 32, 32});
///   auto labels = gkd::Tensor<float>::zeros({4, 128, 128});   // 0 = background, 1 = vessel
///   auto loss = gkd::ifvd_loss(fs, ft, labels, {.classes = 2});
/// @endcode
#include <cmath>
#include <limits>
#include <string_view>

#include "gkd/ops/index.hpp"
#include "gkd/ops/linalg.hpp"
#include "gkd/ops/reduce.hpp"
#include "gkd/ops/similarity.hpp"
#include "gkd/ops/upsample.hpp"

namespace gkd {

/// Options of `ifv_map` and `ifvd_loss`.
struct IfvdOptions {
  std::int64_t classes = 2;  ///< number of classes K (labels in [0, K)), > 0
  double eps = 1e-8;         ///< norm clamp of the cosine similarity (F.cosine_similarity's default), >= 0
};

namespace detail {

template <Real T>
void check_ifvd_inputs(std::string_view op, const Tensor<T>& feature, const Tensor<T>& labels,
                       const IfvdOptions& options, std::string_view what) {
  GKD_CHECK(feature.dim() == 4 && feature.numel() > 0, op,
            what << " feature must be non-empty 4-D [B, C, H, W], got " << to_string(feature.shape()));
  GKD_CHECK(labels.dim() == 3 && labels.numel() > 0, op,
            "labels must be non-empty 3-D [B, H0, W0], got " << to_string(labels.shape()) << " for " << what
                                                               << " feature " << to_string(feature.shape()));
  GKD_CHECK(labels.shape()[0] == feature.shape()[0], op,
            "labels of shape " << to_string(labels.shape()) << " and " << what << " feature of shape "
                               << to_string(feature.shape()) << " have different batch sizes");
  GKD_CHECK(options.classes > 0, op, "classes must be positive, got " << options.classes);
  GKD_CHECK(options.eps >= 0 && std::isfinite(options.eps), op, "eps must be finite and >= 0, got " << options.eps);
  check_index_range(integer_values(labels, op, "labels"), options.classes, op, "labels", labels.shape(),
                    {options.classes});
}

}  // namespace detail

/// The IFV map M(p) = cos(F(p), μ_{label(p)}) of a feature [B, C, H, W] and labels [B, H0, W0]
/// (nearest-resized to H × W): [B, H, W]. Differentiable w.r.t. the feature (also through μ).
/// @throws gkd::Error for bad shapes, batch mismatch, a non-integer or out-of-range label, or bad options
template <Real T>
Tensor<T> ifv_map(const Tensor<T>& feature, const Tensor<T>& labels, const IfvdOptions& options = {}) {
  detail::check_ifvd_inputs("ifv_map", feature, labels, options, "the");
  const auto& s = feature.shape();
  const std::int64_t b = s[0], c = s[1], h = s[2], w = s[3], k = options.classes;
  const Tensor<T> lab = labels.detach().reshape({b, 1, labels.shape()[1], labels.shape()[2]});
  const bool resize = labels.shape()[1] != h || labels.shape()[2] != w;
  const Tensor<T> small = (resize ? upsample_nearest2d(lab, Size2(h, w)) : lab).reshape({b, h, w});
  const Tensor<T> mask = one_hot(small, k, 1).reshape({b, k, h * w});  // [B, K, HW], constant
  const Tensor<T> f = feature.reshape({b, c, h * w});
  const Tensor<T> counts = clamp(sum(mask, {2}, true), T(1), std::numeric_limits<T>::max());  // [B, K, 1]
  const Tensor<T> prototypes = matmul(mask, f.transpose(1, 2)) / counts;                        // [B, K, C]
  const Tensor<T> at_pixel = matmul(prototypes.transpose(1, 2), mask);                          // [B, C, HW]
  return cosine_similarity(f, at_pixel, 1, static_cast<T>(options.eps)).reshape({b, h, w});
}

/// IFVD loss mean((M(F_s) − M(F_t))²) with the teacher detached (see the file comment).
/// @throws gkd::Error for bad shapes, batch mismatch, bad labels or options
template <Real T>
Tensor<T> ifvd_loss(const Tensor<T>& student, const Tensor<T>& teacher, const Tensor<T>& labels,
                    const IfvdOptions& options = {}) {
  constexpr std::string_view op = "ifvd_loss";
  detail::check_ifvd_inputs(op, student, labels, options, "student");
  GKD_CHECK(teacher.dim() == 4 && teacher.numel() > 0, op,
            "teacher feature must be non-empty 4-D [B, C, H, W], got " << to_string(teacher.shape()));
  GKD_CHECK(teacher.shape()[0] == student.shape()[0], op,
            "student feature of shape " << to_string(student.shape()) << " and teacher feature of shape "
                                        << to_string(teacher.shape()) << " have different batch sizes");
  const Size2 size(teacher.shape()[2], teacher.shape()[3]);
  const bool resize = student.shape()[2] != size.h || student.shape()[3] != size.w;
  const Tensor<T> fs = resize ? upsample_bilinear2d(student, size, false) : student;
  const Tensor<T> diff = ifv_map(fs, labels, options) - ifv_map(teacher.detach(), labels, options);
  return mean(diff * diff);
}

}  // namespace gkd
