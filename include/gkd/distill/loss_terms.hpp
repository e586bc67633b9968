// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `LossTerms`: the named, already weighted terms of one training step and their sum, so that a stage
/// can log every term, plot it, and name the one that went NaN.
///
/// Contract: `add(name, value, weight)` skips terms whose weight is 0 (a switched-off term is not even
/// computed when the caller tests `wants(weight)` first); `total()` is the sum of the added terms (a 0-d
/// tensor); `check_finite(stage, step)` throws gkd::Error naming the stage, the step and the first
/// non-finite term.
/// @code
///   gkd::distill::LossTerms<float> terms;
///   terms.add("ce", gkd::cross_entropy(logits, labels));
///   if (gkd::distill::wants(cfg.gkd.intra)) terms.add("intra", intra_loss, cfg.gkd.intra);
///   terms.check_finite("distill", step);
///   terms.total().backward();
/// @endcode
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gkd/core/tensor.hpp"
#include "gkd/ops/elementwise.hpp"

namespace gkd::distill {

/// Whether a term with this weight is switched on.
inline bool wants(double weight) { return weight != 0.0; }

template <Real T>
struct LossTerms {
  std::vector<std::pair<std::string, Tensor<T>>> terms;  ///< weighted values, in insertion order

  void add(std::string name, const Tensor<T>& value, double weight = 1.0) {
    if (!wants(weight)) return;
    GKD_CHECK(value.numel() == 1, "LossTerms", "term '" << name << "' must be a scalar, got shape " << to_string(value.shape()));
    terms.emplace_back(std::move(name), weight == 1.0 ? value : gkd::mul(value, static_cast<T>(weight)));
  }
  [[nodiscard]] Tensor<T> total() const {
    GKD_CHECK(!terms.empty(), "LossTerms", "no loss term was added (every weight is 0?)");
    Tensor<T> sum = terms.front().second;
    for (std::size_t i = 1; i < terms.size(); ++i) sum = gkd::add(sum, terms[i].second);
    return sum;
  }
  /// The values as doubles, for logs.
  [[nodiscard]] std::vector<std::pair<std::string, double>> values() const {
    std::vector<std::pair<std::string, double>> out;
    for (const auto& [name, v] : terms) out.emplace_back(name, static_cast<double>(v.item()));
    return out;
  }
  void check_finite(const std::string& stage, std::int64_t step) const {
    for (const auto& [name, v] : terms) {
      const double x = static_cast<double>(v.item());
      GKD_CHECK(std::isfinite(x), "training", "stage '" << stage << "', step " << step << ": loss term '" << name
                                                        << "' is " << x << " (stopping; lower the lr or that term's weight)");
    }
  }
};

}  // namespace gkd::distill
