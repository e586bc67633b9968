// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::gradcheck`: compares the gradients of a float64 function computed by backward() with
/// central finite differences, element by element, and reports the worst element.
///
/// For a non-scalar output y the check uses a random projection: it differentiates uᵀy for a seeded
/// random u, which exercises every input element (PyTorch's gradcheck in fast mode checks the same
/// quantity). It is kink-aware: when the one-sided slopes at an element disagree, the input sits on a
/// non-differentiable point (a ReLU at 0, a max tie, |x| at 0); the element is nudged away and the
/// whole check restarts, at most `max_kink_retries` times, and the report says so.
///
/// Example (a user's own op):
/// @code
///   gkd::Generator gen(0);
///   auto x = gkd::randn<double>({3, 4}, gen);
///   auto report = gkd::gradcheck([](const auto& in) { return gkd::tanh(in[0]); }, {x});
///   if (!report) std::cerr << report.message << '\n';
/// @endcode
#include <cmath>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gkd/core/random.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd {

/// Tolerances and knobs of gradcheck; defaults are PyTorch's (meant for float64).
struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< absolute tolerance
  double rtol = 1e-3;  ///< relative tolerance (of the numerical derivative)
  std::uint64_t seed = 0;   ///< seed of the projection vector u
  int max_kink_retries = 4;  ///< restarts allowed after nudging an input off a kink
  double kink_nudge = 1e-3;  ///< how far an input on a kink is moved (relative to 1 + |x|)
};

/// What gradcheck found.
struct GradcheckResult {
  bool ok = true;
  std::string message;              ///< human-readable verdict, with the worst element
  std::size_t worst_input = 0;      ///< index of the input holding the worst element
  std::int64_t worst_element = -1;  ///< flat index of that element
  double analytic = 0, numeric = 0, max_abs_error = 0;
  int kink_retries = 0;             ///< how often an input was nudged off a kink
  std::vector<std::string> ops;     ///< names of the ops in the checked graph
  explicit operator bool() const { return ok; }
};

namespace detail {
inline void collect_ops(const std::shared_ptr<AutogradMeta<double>>& root, std::set<std::string>& out) {
  std::vector<AutogradMeta<double>*> stack{root.get()};
  std::set<AutogradMeta<double>*> seen;
  while (!stack.empty()) {
    auto* m = stack.back();
    stack.pop_back();
    if (!m || !seen.insert(m).second || !m->grad_fn) continue;
    out.insert(m->grad_fn->op);
    for (const auto& in : m->grad_fn->inputs) stack.push_back(in.get());
  }
}
}  // namespace detail

/// Checks d(uᵀ f(inputs))/d inputs from backward() against central differences in float64.
/// @param f      maps the inputs to one output tensor; must be deterministic
/// @param inputs the tensors to differentiate with respect to (copied; the originals are untouched)
/// @return a report; `ok` is false when any element differs by more than atol + rtol * |numeric|
template <class F>
GradcheckResult gradcheck(F&& f, std::vector<Tensor<double>> inputs, const GradcheckOptions& options = {}) {
  GradcheckResult result;
  for (auto& in : inputs) in = detail::owned_copy(in);
  for (int attempt = 0;; ++attempt) {
    std::vector<Tensor<double>> leaves;
    for (const auto& in : inputs) leaves.push_back(detail::owned_copy(in).requires_grad());
    Tensor<double> y = f(leaves);
    GKD_CHECK(y.defined() && y.requires_grad_flag(), "gradcheck",
              "the function's output does not depend differentiably on the inputs");
    std::set<std::string> ops;
    detail::collect_ops(y.meta(), ops);
    result.ops.assign(ops.begin(), ops.end());
    Generator gen(options.seed);
    const Tensor<double> u = randn<double>(y.shape(), gen);
    y.backward(u);

    auto objective = [&](const std::vector<Tensor<double>>& xs) {
      NoGrad guard;
      const Tensor<double> out = f(xs).contiguous_copy_if_needed();
      double s = 0;
      for (std::int64_t i = 0; i < out.numel(); ++i) s += out.data()[i] * u.data()[i];
      return s;
    };
    std::vector<Tensor<double>> probe;
    for (const auto& in : inputs) probe.push_back(detail::owned_copy(in));
    const double base = objective(probe);

    bool kinked = false;
    result.ok = true;
    result.max_abs_error = 0;
    double worst_excess = -1;
    for (std::size_t i = 0; i < probe.size() && !kinked; ++i) {
      const Tensor<double> grad = leaves[i].grad();
      for (std::int64_t j = 0; j < probe[i].numel(); ++j) {
        double& x = probe[i].data()[j];
        const double x0 = x;
        x = x0 + options.eps;
        const double plus = objective(probe);
        x = x0 - options.eps;
        const double minus = objective(probe);
        x = x0;
        const double numeric = (plus - minus) / (2 * options.eps);
        const double right = (plus - base) / options.eps, left = (base - minus) / options.eps;
        const double slack = options.atol + options.rtol * std::max(std::abs(left), std::abs(right));
        if (std::abs(right - left) > 10 * slack) {  // a kink: the two one-sided slopes disagree
          GKD_CHECK(attempt < options.max_kink_retries, "gradcheck",
                    "input " << i << " element " << j << " stays on a non-differentiable point after "
                             << attempt << " nudges (one-sided slopes " << left << " and " << right << ")");
          inputs[i].data()[j] = x0 + options.kink_nudge * (1 + std::abs(x0)) * (gen.uniform() < 0.5 ? -1 : 1);
          kinked = true;
          break;
        }
        const double analytic = grad.defined() ? grad.data()[j] : 0.0;
        const double err = std::abs(analytic - numeric);
        const double excess = err - (options.atol + options.rtol * std::abs(numeric));
        result.max_abs_error = std::max(result.max_abs_error, err);
        if (excess > worst_excess) {
          worst_excess = excess;
          result.worst_input = i;
          result.worst_element = j;
          result.analytic = analytic;
          result.numeric = numeric;
        }
        if (excess > 0) result.ok = false;
      }
    }
    if (kinked) {
      ++result.kink_retries;
      continue;
    }
    std::ostringstream msg;
    msg << (result.ok ? "gradcheck passed" : "gradcheck FAILED") << ": worst element " << result.worst_element
        << " of input " << result.worst_input << ": analytic " << result.analytic << ", numeric "
        << result.numeric << " (|diff| " << std::abs(result.analytic - result.numeric) << ", atol " << options.atol
        << ", rtol " << options.rtol << "); ops:";
    for (const auto& op : result.ops) msg << ' ' << op;
    if (result.kink_retries) msg << "; nudged off kinks " << result.kink_retries << " time(s)";
    result.message = msg.str();
    return result;
  }
}

}  // namespace gkd
