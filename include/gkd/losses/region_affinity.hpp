// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// EMKD's region affinity distillation (RAD, Qin et al., IEEE TMI 2021; method.md §13), composed from
/// differentiable ops (autodiff gives the gradient).
///
/// For a feature F [B, C, H, W] and a binary mask [B, H0, W0] (values 0 = background, 1 = foreground,
/// stored as T) nearest-resized (F.interpolate mode "nearest") to the feature's H × W as m:
///
///   r1 = Σ_{h,w} F·m     / (Σ_{h,w} m     + foreground_smooth)      (foreground region vector, [B, C])
///   r0 = Σ_{h,w} F·(1−m) / (Σ_{h,w} (1−m) + background_smooth)      (background region vector, [B, C])
///   c(F) = cos(r0, r1)                                                (F.cosine_similarity along C, eps) -> [B]
///
/// and between a student and a teacher feature (channel counts and spatial sizes may differ: the mask
/// is resized to each feature's own size)
///
///   L = mean over b of (c(F_s) − c(F_t))²
///
/// Defaults follow EMKD's code: +1 smoothing on the foreground denominator only. With a zero
/// smoothing, a sample without pixels of that region at the feature size raises an error (instead of
/// a silent NaN). The teacher is detached (no gradient reaches it). Returns a scalar.
///
/// EMKD's total loss is L_seg + 0.1·PMD + 0.9·IMD + 0.9·RAD with PMD = `distillation_kl(s, t, 4)`
/// (gkd/losses/kl_div.hpp), IMD = `attention_transfer_loss(fs, ft, {.p = 4, .sum_over_positions = true})`
/// (gkd/losses/attention_transfer.hpp) and RAD this loss, IMD and RAD summed over the low- and
/// high-level feature pairs.
/// @code
///   auto fs = gkd::Tensor<float>::empty({4, 32, 32, 32}), ft = gkd::Tensor<float>::empty({4, 64, 64, 64});
///   auto mask = gkd::Tensor<float>::zeros({4, 128, 128});
///   auto rad = gkd::region_affinity_loss(fs, ft, mask);
/// @endcode
#include <cmath>
#include <string_view>

#include "gkd/ops/reduce.hpp"
#include "gkd/ops/similarity.hpp"
#include "gkd/ops/upsample.hpp"

namespace gkd {

/// Options of `region_contrast` and `region_affinity_loss`.
struct RegionAffinityOptions {
  double foreground_smooth = 1.0;  ///< added to the foreground pixel count, >= 0 (EMKD: 1)
  double background_smooth = 0.0;  ///< added to the background pixel count, >= 0 (EMKD: 0)
  double eps = 1e-8;               ///< norm clamp of the cosine similarity, >= 0
};

namespace detail {

template <Real T>
void check_region_inputs(std::string_view op, const Tensor<T>& feature, const Tensor<T>& mask,
                         const RegionAffinityOptions& options, std::string_view what) {
  GKD_CHECK(feature.dim() == 4 && feature.numel() > 0, op,
            what << " feature must be non-empty 4-D [B, C, H, W], got " << to_string(feature.shape()));
  GKD_CHECK(mask.dim() == 3 && mask.numel() > 0, op,
            "mask must be non-empty 3-D [B, H0, W0], got " << to_string(mask.shape()) << " for " << what
                                                           << " feature " << to_string(feature.shape()));
  GKD_CHECK(mask.shape()[0] == feature.shape()[0], op,
            "mask of shape " << to_string(mask.shape()) << " and " << what << " feature of shape "
                             << to_string(feature.shape()) << " have different batch sizes");
  for (double v : {options.foreground_smooth, options.background_smooth, options.eps})
    GKD_CHECK(v >= 0 && std::isfinite(v), op,
              "foreground_smooth, background_smooth and eps must be finite and >= 0, got "
                  << options.foreground_smooth << ", " << options.background_smooth << ", " << options.eps);
  const Tensor<T> mc = mask.cpu().contiguous_copy_if_needed();  // validated on the host
  for (std::int64_t i = 0; i < mc.numel(); ++i)
    GKD_CHECK(mc.data()[i] == T(0) || mc.data()[i] == T(1), op,
              "mask of shape " << to_string(mask.shape()) << " must hold 0 or 1, got " << mc.data()[i]
                               << " at flat index " << i);
}

}  // namespace detail

/// c(F) = cos(r0, r1) per sample: feature [B, C, H, W], binary mask [B, H0, W0] -> [B].
/// Differentiable w.r.t. the feature.
/// @throws gkd::Error for bad shapes, batch mismatch, a non-binary mask, bad options, or an empty
///         region whose smoothing is 0
template <Real T>
Tensor<T> region_contrast(const Tensor<T>& feature, const Tensor<T>& mask, const RegionAffinityOptions& options = {}) {
  constexpr std::string_view op = "region_contrast";
  detail::check_region_inputs(op, feature, mask, options, "the");
  const auto& s = feature.shape();
  const Tensor<T> m4 = mask.detach().reshape({s[0], 1, mask.shape()[1], mask.shape()[2]});
  const bool resize = mask.shape()[1] != s[2] || mask.shape()[2] != s[3];
  const Tensor<T> fg = resize ? upsample_nearest2d(m4, Size2(s[2], s[3])) : m4;  // [B, 1, H, W]
  const Tensor<T> bg = T(1) - fg;
  const Tensor<T> fg_count = sum(fg, {2, 3}), bg_count = sum(bg, {2, 3});  // [B, 1]
  const Tensor<T> fg_host = fg_count.cpu(), bg_host = bg_count.cpu();
  for (std::int64_t b = 0; b < s[0]; ++b) {
    GKD_CHECK(options.foreground_smooth > 0 || fg_host.data()[b] > 0, op,
              "sample " << b << " has no foreground pixel at the feature size " << s[2] << "x" << s[3]
                        << " (feature " << to_string(s) << ", mask " << to_string(mask.shape())
                        << "): set foreground_smooth > 0");
    GKD_CHECK(options.background_smooth > 0 || bg_host.data()[b] > 0, op,
              "sample " << b << " has no background pixel at the feature size " << s[2] << "x" << s[3]
                        << " (feature " << to_string(s) << ", mask " << to_string(mask.shape())
                        << "): set background_smooth > 0");
  }
  const Tensor<T> r1 = sum(feature * fg, {2, 3}) / (fg_count + static_cast<T>(options.foreground_smooth));
  const Tensor<T> r0 = sum(feature * bg, {2, 3}) / (bg_count + static_cast<T>(options.background_smooth));
  return cosine_similarity(r0, r1, 1, static_cast<T>(options.eps));
}

/// RAD loss mean_b((c(F_s) − c(F_t))²) with the teacher detached (see the file comment).
/// @throws gkd::Error for bad shapes, batch mismatch, a non-binary mask, bad options or an empty region
template <Real T>
Tensor<T> region_affinity_loss(const Tensor<T>& student, const Tensor<T>& teacher, const Tensor<T>& mask,
                               const RegionAffinityOptions& options = {}) {
  constexpr std::string_view op = "region_affinity_loss";
  detail::check_region_inputs(op, student, mask, options, "student");
  detail::check_region_inputs(op, teacher, mask, options, "teacher");
  const Tensor<T> diff = region_contrast(student, mask, options) - region_contrast(teacher.detach(), mask, options);
  return mean(diff * diff);
}

}  // namespace gkd
