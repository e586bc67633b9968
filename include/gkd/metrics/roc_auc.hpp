// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Exact ROC-AUC over pixel scores, accumulated over a test set and optionally restricted to a FOV.
///
/// AUC = P(score of a random positive > score of a random negative) + ½ P(equal), computed exactly from
/// the sorted scores with integer counts: this is the area under the trapezoidal ROC curve of scikit-learn's
/// `roc_auc_score` / `roc_curve` + `auc` (ties form one diagonal step). It keeps every score (4 bytes per
/// pixel: a CHASE_DB1 test set of 14 images needs ~54 MB). Undefined (NaN) when there are no positives or
/// no negatives. Scores may be any monotone transform (probabilities, logits, log-softmax): AUC is rank-based.
///
/// @code
/// gkd::metrics::RocAucAccumulator auc;
/// for (auto& [prob, target, fov] : test_set) auc.add(prob, target, fov);
/// double a = auc.value();
/// @endcode
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::metrics {

namespace detail {
__extension__ using uint128 = unsigned __int128;  // GCC/Clang; exact counts up to 2^128
}  // namespace detail

/// Exact AUC from the scores of the positives and of the negatives (both are sorted in place).
inline double roc_auc(std::span<float> positive, std::span<float> negative) {
  if (positive.empty() || negative.empty()) return std::numeric_limits<double>::quiet_NaN();
  for (float v : positive) GKD_CHECK(!std::isnan(v), "roc_auc", "a positive score is NaN");
  for (float v : negative) GKD_CHECK(!std::isnan(v), "roc_auc", "a negative score is NaN");
  std::sort(positive.begin(), positive.end());
  std::sort(negative.begin(), negative.end());
  // twice the Mann-Whitney U statistic, as an exact integer: 2·#(p > n) + #(p == n)
  detail::uint128 twice_u = 0;
  std::size_t below = 0, upto = 0;  // negatives < v, negatives <= v
  for (std::size_t i = 0; i < positive.size();) {
    const float v = positive[i];
    std::size_t j = i;
    while (j < positive.size() && positive[j] == v) ++j;
    while (below < negative.size() && negative[below] < v) ++below;
    upto = std::max(upto, below);
    while (upto < negative.size() && negative[upto] == v) ++upto;
    twice_u += static_cast<detail::uint128>(j - i) * (2 * below + (upto - below));
    i = j;
  }
  const long double den = 2.0L * static_cast<long double>(positive.size()) * static_cast<long double>(negative.size());
  return static_cast<double>(static_cast<long double>(twice_u) / den);
}

/// Collects (score, label) pairs over a test set and gives the exact global AUC.
class RocAucAccumulator {
 public:
  /// Adds the pixels of one image (any shape) with `fov != 0` (all when `fov` is undefined);
  /// `target != 0` is the positive class. GPU tensors are read through host copies.
  template <Real T>
  void add(const Tensor<T>& score, const Tensor<T>& target, const Tensor<T>& fov = {}) {
    GKD_CHECK(score.shape() == target.shape(), "RocAucAccumulator",
              "score " << to_string(score.shape()) << " and target " << to_string(target.shape()) << " differ in shape");
    GKD_CHECK(!fov.defined() || fov.shape() == score.shape(), "RocAucAccumulator",
              "score " << to_string(score.shape()) << " and fov " << to_string(fov.shape()) << " differ in shape");
    const Tensor<T> s = score.cpu().contiguous(), t = target.cpu().contiguous();
    const Tensor<T> f = fov.defined() ? fov.cpu().contiguous() : Tensor<T>();
    for (std::int64_t i = 0; i < s.numel(); ++i) {
      if (f.defined() && f.data()[i] == T(0)) continue;
      const float v = static_cast<float>(s.data()[i]);
      GKD_CHECK(!std::isnan(v), "RocAucAccumulator", "score at flat index " << i << " is NaN");
      (t.data()[i] != T(0) ? positive_ : negative_).push_back(v);
    }
  }
  void reset() noexcept { positive_.clear(), negative_.clear(); }
  [[nodiscard]] std::size_t positives() const noexcept { return positive_.size(); }
  [[nodiscard]] std::size_t negatives() const noexcept { return negative_.size(); }
  /// The exact AUC (NaN without positives or negatives). Sorts the stored scores (cheap to call twice).
  [[nodiscard]] double value() { return roc_auc(positive_, negative_); }

 private:
  std::vector<float> positive_, negative_;
};

}  // namespace gkd::metrics
