// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Binary segmentation metrics from a confusion matrix accumulated globally over a test set (the
/// protocol of the GKD code, method.md §9.4), optionally restricted to a field-of-view mask, and the
/// per-image Dice and IoU.
///
/// Conventions (pinned by tests/metrics/test_segmentation.cpp):
/// - Foreground is class 1. A prediction is foreground when its score is `>= threshold` (default 0.5;
///   pass probabilities) — or pass 0/1 masks directly.
/// - FOV: pixels whose FOV value is 0 are ignored entirely (the standard for DRIVE, STARE, CHASE_DB1).
/// - Dice/F1 = 2TP / (2TP + FP + FN), IoU = TP / (TP + FP + FN); when both prediction and target are
///   empty (denominator 0) both are **1** (perfect agreement); one empty and the other not gives 0.
/// - Sensitivity, specificity, precision with a zero denominator (no positives, no negatives, no
///   predicted positives) are **NaN**: undefined, never silently 0 or 1.
/// - mIoU = mean of the foreground IoU and the background IoU (TN / (TN + FP + FN)), each with the
///   empty → 1 convention.
///
/// @code
/// gkd::metrics::ConfusionAccumulator acc;
/// for (auto& [prob, target, fov] : test_set)   // H×W tensors: foreground probability, 0/1 mask, 0/1 FOV
///   acc.add(prob, target, fov);
/// auto m = acc.metrics();                        // m.f1, m.sensitivity, m.mean_iou, ...
/// double d = gkd::metrics::dice(prediction_mask, target_mask);   // per image
/// @endcode
#include <cmath>
#include <cstdint>
#include <limits>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::metrics {

/// Global binary confusion counts and the ratios derived from them.
struct ConfusionCounts {
  std::int64_t tp = 0, fp = 0, tn = 0, fn = 0;

  [[nodiscard]] std::int64_t total() const noexcept { return tp + fp + tn + fn; }
  static double ratio(double num, double den) noexcept {
    return den == 0 ? std::numeric_limits<double>::quiet_NaN() : num / den;
  }
  [[nodiscard]] double accuracy() const noexcept { return ratio(double(tp + tn), double(total())); }
  [[nodiscard]] double sensitivity() const noexcept { return ratio(double(tp), double(tp + fn)); }
  [[nodiscard]] double specificity() const noexcept { return ratio(double(tn), double(tn + fp)); }
  [[nodiscard]] double precision() const noexcept { return ratio(double(tp), double(tp + fp)); }
  /// F1 of the foreground = Dice; 1 when prediction and target are both empty.
  [[nodiscard]] double f1() const noexcept {
    const std::int64_t den = 2 * tp + fp + fn;
    return den == 0 ? 1.0 : double(2 * tp) / double(den);
  }
  [[nodiscard]] double dice() const noexcept { return f1(); }
  /// Foreground IoU (Jaccard); 1 when both are empty.
  [[nodiscard]] double iou() const noexcept {
    const std::int64_t den = tp + fp + fn;
    return den == 0 ? 1.0 : double(tp) / double(den);
  }
  /// Background IoU: TN / (TN + FP + FN); 1 when both have no background.
  [[nodiscard]] double background_iou() const noexcept {
    const std::int64_t den = tn + fp + fn;
    return den == 0 ? 1.0 : double(tn) / double(den);
  }
  /// Mean of foreground and background IoU.
  [[nodiscard]] double mean_iou() const noexcept { return 0.5 * (iou() + background_iou()); }

  ConfusionCounts& operator+=(const ConfusionCounts& o) noexcept {
    tp += o.tp, fp += o.fp, tn += o.tn, fn += o.fn;
    return *this;
  }
};

/// The summary every segmentation report prints.
struct SegmentationMetrics {
  double accuracy, sensitivity, specificity, precision, f1, iou, mean_iou;
  std::int64_t pixels;
};

namespace detail {
template <Real T>
void check_same_plane(const Tensor<T>& a, const Tensor<T>& b, const char* op, const char* what) {
  GKD_CHECK(a.shape() == b.shape(), op,
            "prediction " << to_string(a.shape()) << " and " << what << " " << to_string(b.shape()) << " differ in shape");
}
}  // namespace detail

/// Confusion counts of one image: `score >= threshold` against `target != 0`, over pixels with `fov != 0`
/// (all pixels when `fov` is undefined). Any shape, as long as the three agree; GPU tensors are read
/// through host copies.
template <Real T>
ConfusionCounts confusion(const Tensor<T>& score, const Tensor<T>& target, const Tensor<T>& fov = {},
                          double threshold = 0.5) {
  detail::check_same_plane(score, target, "confusion", "target");
  if (fov.defined()) detail::check_same_plane(score, fov, "confusion", "fov");
  const Tensor<T> s = score.cpu().contiguous(), t = target.cpu().contiguous();
  const Tensor<T> f = fov.defined() ? fov.cpu().contiguous() : Tensor<T>();
  const T* ps = s.data();
  const T* pt = t.data();
  const T* pf = f.defined() ? f.data() : nullptr;
  ConfusionCounts c;
  for (std::int64_t i = 0; i < s.numel(); ++i) {
    if (pf && pf[i] == T(0)) continue;
    const bool p = double(ps[i]) >= threshold, g = pt[i] != T(0);
    c.tp += p && g;
    c.fp += p && !g;
    c.fn += !p && g;
    c.tn += !p && !g;
  }
  return c;
}

/// Accumulates confusion counts over a test set; `metrics()` gives the global figures.
class ConfusionAccumulator {
 public:
  explicit ConfusionAccumulator(double threshold = 0.5) : threshold_(threshold) {}
  /// Adds one image (or a batch: any shape), see `confusion`.
  template <Real T>
  void add(const Tensor<T>& score, const Tensor<T>& target, const Tensor<T>& fov = {}) {
    counts_ += confusion(score, target, fov, threshold_);
  }
  void reset() noexcept { counts_ = {}; }
  [[nodiscard]] const ConfusionCounts& counts() const noexcept { return counts_; }
  [[nodiscard]] SegmentationMetrics metrics() const noexcept {
    const auto& c = counts_;
    return {c.accuracy(), c.sensitivity(), c.specificity(), c.precision(), c.f1(), c.iou(), c.mean_iou(), c.total()};
  }

 private:
  double threshold_;
  ConfusionCounts counts_;
};

/// Dice of one image (masks: nonzero = foreground, or scores with `threshold`); both empty → 1.
template <Real T>
double dice(const Tensor<T>& prediction, const Tensor<T>& target, const Tensor<T>& fov = {}, double threshold = 0.5) {
  return confusion(prediction, target, fov, threshold).dice();
}

/// IoU of one image; both empty → 1.
template <Real T>
double iou(const Tensor<T>& prediction, const Tensor<T>& target, const Tensor<T>& fov = {}, double threshold = 0.5) {
  return confusion(prediction, target, fov, threshold).iou();
}

}  // namespace gkd::metrics
