// SPDX-License-Identifier: Apache-2.0
#pragma once
// Replays the optimizer trajectories of tools/golden/optim.py: the same problem, optimizer and
// schedule, STEPS steps, comparing the parameters after every step and the lr of every step.
#include <functional>
#include <memory>
#include <string>

#include "gkd/optim/adam.hpp"
#include "gkd/optim/schedule.hpp"
#include "gkd/optim/sgd.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

namespace gkd::test {

inline constexpr int kTrajectorySteps = 25;

/// The problem of tools/golden/optim.py: with U = W - A and V = b - c,
/// loss = sum(0.5 * D * U^2 + 0.1 * U^4) + sum(0.5 * V^2 + 0.3 * V * tanh(V)).
template <Real T>
struct TrajectoryProblem {
  Tensor<T> A, c, D;
  explicit TrajectoryProblem(const Golden& g)
      : A(g.get<T>("problem.A")), c(g.get<T>("problem.c")), D(g.get<T>("problem.D")) {}
  [[nodiscard]] Tensor<T> loss(const Tensor<T>& W, const Tensor<T>& b) const {
    const Tensor<T> U = sub(W, A), V = sub(b, c);
    return add(sum(add(mul(mul(D, pow(U, T(2))), T(0.5)), mul(pow(U, T(4)), T(0.1)))),
               sum(add(mul(pow(V, T(2)), T(0.5)), mul(mul(V, tanh(V)), T(0.3)))));
  }
};

/// Tolerance of a replay with gkd's own gradients: 1e-10 in float64, 1e-5 in float32.
template <Real T>
constexpr double trajectory_tolerance() {
  return std::is_same_v<T, double> ? 1e-10 : 1e-5;
}

/// Where each step's gradient comes from: gkd's own backward pass, or PyTorch's gradient (and lr)
/// read from the golden file, which isolates the optimizer's arithmetic.
enum class GradSource { Gkd, PyTorch };

template <Real T>
using MakeOptimizer = std::function<std::unique_ptr<Optimizer<T>>(const Tensor<T>& W, const Tensor<T>& b)>;
template <Real T>
using MakeScheduler = std::function<std::unique_ptr<LRScheduler<T>>(Optimizer<T>&)>;

/// Replays golden case `name` and REQUIREs every step's parameters within `tol` (relative, see
/// require_close; 0 demands identical bits) and the scheduler's lr within 1e-13 of PyTorch's.
template <Real T>
void replay_trajectory(const std::string& name, const MakeOptimizer<T>& make_optimizer,
                       const MakeScheduler<T>& make_scheduler, GradSource source, double tol) {
  static const Golden golden("optim");
  const std::string tag = name + "." + std::string(dtype_name<T>());
  INFO("trajectory " << tag << (source == GradSource::Gkd ? " (gkd gradients)" : " (PyTorch gradients and lrs)"));
  const TrajectoryProblem<T> problem(golden);
  Tensor<T> W = golden.get<T>("problem.W0").requires_grad();
  Tensor<T> b = golden.get<T>("problem.b0").requires_grad();
  std::unique_ptr<Optimizer<T>> opt = make_optimizer(W, b);
  std::unique_ptr<LRScheduler<T>> sched = make_scheduler ? make_scheduler(*opt) : nullptr;
  const Tensor<double> lrs = golden.get<double>(tag + ".lr");
  REQUIRE(lrs.shape() == Shape{kTrajectorySteps, static_cast<std::int64_t>(opt->num_groups())});
  for (int k = 1; k <= kTrajectorySteps; ++k) {
    INFO("step " << k);
    const std::string at = tag + ".step" + std::to_string(k);
    const std::string grad = tag + ".grad" + std::to_string(k);
    opt->zero_grad();
    for (std::size_t i = 0; i < opt->num_groups(); ++i) {
      const double expected = lrs.at({k - 1, static_cast<std::int64_t>(i)});
      INFO("lr of group " << i << ": " << opt->lr(i) << " vs PyTorch " << expected);
      REQUIRE(std::abs(opt->lr(i) - expected) <= 1e-13 * std::abs(expected));
      if (source == GradSource::PyTorch) opt->set_lr(i, expected);
    }
    if (source == GradSource::Gkd) {
      problem.loss(W, b).backward();
      // In float32 the parameters differ from PyTorch's by an ulp (~1e-7 at |W| ~ 1.5), which is a
      // relative 1e-4 of U = W - A ~ 1e-3 near the optimum: only float64 gradients are comparable.
      if constexpr (std::is_same_v<T, double>) {
        require_close(W.grad(), golden.get<T>(grad + ".W"), 1e-10, grad + ".W");
        require_close(b.grad(), golden.get<T>(grad + ".b"), 1e-10, grad + ".b");
      }
    } else {
      W.set_grad(golden.get<T>(grad + ".W"));
      b.set_grad(golden.get<T>(grad + ".b"));
    }
    opt->step();
    if (sched) sched->step();
    require_close(W.detach(), golden.get<T>(at + ".W"), tol, at + ".W");
    require_close(b.detach(), golden.get<T>(at + ".b"), tol, at + ".b");
  }
}

/// Tolerance of a replay with PyTorch's gradients and lrs. SGD reproduces PyTorch's bits where
/// the CPU fuses multiply-adds as PyTorch's kernels do (FMA; without it each fused op may differ
/// by an ulp). Adam cannot always: PyTorch's CPU sqrt goes through MKL's vector math, which is not
/// correctly rounded (one ulp off for about 1% of float64 and 15% of float32 inputs, measured),
/// so `uses_sqrt` allows those few ulps.
#if defined(FP_FAST_FMA) && defined(FP_FAST_FMAF)
inline constexpr bool kFusedMultiplyAdd = true;
#else
inline constexpr bool kFusedMultiplyAdd = false;
#endif
template <Real T>
constexpr double exact_replay_tolerance(bool uses_sqrt) {
  if (!uses_sqrt && kFusedMultiplyAdd) return 0;
  return std::is_same_v<T, double> ? 1e-13 : 1e-6;
}

}  // namespace gkd::test
