// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Learning-rate schedules as in torch.optim.lr_scheduler: a scheduler attaches to an optimizer,
/// sets every group's lr for epoch 0 on construction, and each `step()` advances one epoch (or
/// iteration) and sets the lrs again. Call it after `opt.step()`:
/// @code
///   gkd::Adam<float> opt(params, {.lr = 3e-3});
///   gkd::CosineAnnealingLR sched(opt, /*T_max=*/100, /*eta_min=*/1e-6);
///   for (int epoch = 0; epoch < 100; ++epoch) {
///     train_one_epoch(opt);   // opt.step() inside, with opt.lr(0) == sched.last_lr()[0]
///     sched.step();
///   }
/// @endcode
/// Every schedule here is a closed form lr(base, t) of the epoch t and the group's base lr (its
/// `initial_lr`, set from `lr` when the first scheduler attaches), written with PyTorch's own
/// closed-form expressions (`_get_closed_form_lr`), so a schedule equals those bit for bit and
/// resuming is just `set_last_epoch(t)`. PyTorch's `step()` instead updates lrs recursively from
/// the previous lr; its values differ from the closed form by a few ulps (relative 1e-15).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/optim/optimizer.hpp"

namespace gkd {

/// Base of the schedulers: holds the base lrs and the epoch, and writes lr_at(base, epoch) into
/// each group of the optimizer.
/// @pre the optimizer outlives the scheduler and keeps its number of groups
template <Real T>
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances one epoch and sets each group's lr.
  void step() {
    ++epoch_;
    apply();
  }
  /// Jumps to epoch `t` (resuming from a checkpoint) and sets each group's lr. @pre t >= 0
  void set_last_epoch(std::int64_t t) {
    GKD_CHECK(t >= 0, name_, "epoch must be >= 0, got " << t);
    epoch_ = t;
    apply();
  }
  /// The epoch of the lrs now set (0 after construction).
  [[nodiscard]] std::int64_t last_epoch() const noexcept { return epoch_; }
  /// Each group's base lr (its `initial_lr`).
  [[nodiscard]] const std::vector<double>& base_lrs() const noexcept { return base_lrs_; }
  /// The lrs the scheduler set last, one per group.
  [[nodiscard]] std::vector<double> last_lr() const {
    std::vector<double> out;
    for (std::size_t i = 0; i < base_lrs_.size(); ++i) out.push_back(lr_at(base_lrs_[i], epoch_));
    return out;
  }
  /// The closed form: the lr at epoch `t` of a group whose base lr is `base`.
  [[nodiscard]] virtual double lr_at(double base, std::int64_t t) const = 0;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 protected:
  LRScheduler(Optimizer<T>& optimizer, std::string name) : optimizer_(optimizer), name_(std::move(name)) {
    for (std::size_t i = 0; i < optimizer.num_groups(); ++i) {
      if (!optimizer.group(i).initial_lr) optimizer.set_initial_lr(i, optimizer.group(i).lr);
      base_lrs_.push_back(*optimizer.group(i).initial_lr);
    }
  }
  /// Sets the epoch-0 lrs; derived constructors call it last (torch's initial step).
  void start() { set_last_epoch(0); }

 private:
  void apply() {
    GKD_CHECK(optimizer_.num_groups() == base_lrs_.size(), name_,
              "the optimizer has " << optimizer_.num_groups() << " parameter groups but the scheduler was built for "
                                   << base_lrs_.size());
    for (std::size_t i = 0; i < base_lrs_.size(); ++i) optimizer_.set_lr(i, lr_at(base_lrs_[i], epoch_));
  }

  Optimizer<T>& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  std::int64_t epoch_ = 0;
};

/// lr = base * gamma^floor(t / step_size) (torch.optim.lr_scheduler.StepLR).
/// @pre step_size >= 1; gamma > 0 and finite
/// Example: `gkd::StepLR sched(opt, 30, 0.1);   // x0.1 every 30 epochs`
template <Real T>
class StepLR : public LRScheduler<T> {
 public:
  StepLR(Optimizer<T>& optimizer, std::int64_t step_size, double gamma = 0.1)
      : LRScheduler<T>(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
    GKD_CHECK(step_size >= 1, "StepLR", "step_size must be >= 1, got " << step_size);
    GKD_CHECK(gamma > 0 && std::isfinite(gamma), "StepLR", "gamma must be positive and finite, got " << gamma);
    this->start();
  }
  [[nodiscard]] double lr_at(double base, std::int64_t t) const override {
    return base * std::pow(gamma_, static_cast<double>(t / step_size_));
  }

 private:
  std::int64_t step_size_;
  double gamma_;
};

/// lr = base * gamma^(number of milestones <= t) (torch.optim.lr_scheduler.MultiStepLR; a
/// milestone listed twice decays twice).
/// @pre milestones >= 0; gamma > 0 and finite
/// Example: `gkd::MultiStepLR sched(opt, {50, 100, 200}, 0.1);`
template <Real T>
class MultiStepLR : public LRScheduler<T> {
 public:
  MultiStepLR(Optimizer<T>& optimizer, std::vector<std::int64_t> milestones, double gamma = 0.1)
      : LRScheduler<T>(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
    for (auto m : milestones_) GKD_CHECK(m >= 0, "MultiStepLR", "milestones must be >= 0, got " << m);
    GKD_CHECK(gamma > 0 && std::isfinite(gamma), "MultiStepLR", "gamma must be positive and finite, got " << gamma);
    std::sort(milestones_.begin(), milestones_.end());
    this->start();
  }
  [[nodiscard]] double lr_at(double base, std::int64_t t) const override {
    const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
    return base * std::pow(gamma_, static_cast<double>(passed));
  }

 private:
  std::vector<std::int64_t> milestones_;
  double gamma_;
};

/// lr = base * (1 - min(t, total_steps) / total_steps)^power: the poly schedule of segmentation
/// training (torch.optim.lr_scheduler.PolynomialLR, whose default power is 1); 0 from total_steps on.
/// @pre total_steps >= 1; power >= 0 and finite
/// Example: `gkd::PolyLR sched(opt, max_iterations, 0.9);   // step() every iteration`
template <Real T>
class PolyLR : public LRScheduler<T> {
 public:
  PolyLR(Optimizer<T>& optimizer, std::int64_t total_steps, double power = 0.9)
      : LRScheduler<T>(optimizer, "PolyLR"), total_(total_steps), power_(power) {
    GKD_CHECK(total_steps >= 1, "PolyLR", "total_steps must be >= 1, got " << total_steps);
    GKD_CHECK(power >= 0 && std::isfinite(power), "PolyLR", "power must be >= 0 and finite, got " << power);
    this->start();
  }
  [[nodiscard]] double lr_at(double base, std::int64_t t) const override {
    return base * std::pow(1.0 - static_cast<double>(std::min(total_, t)) / static_cast<double>(total_), power_);
  }

 private:
  std::int64_t total_;
  double power_;
};

namespace detail {
/// eta_min + (base - eta_min) * (1 + cos(pi * t / t_max)) / 2, in PyTorch's order of operations.
inline double cosine_annealing(double base, double eta_min, std::int64_t t, std::int64_t t_max) {
  return eta_min + (base - eta_min) *
                       (1 + std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(t_max))) / 2;
}
}  // namespace detail

/// lr = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2 (the closed form of
/// torch.optim.lr_scheduler.CosineAnnealingLR): eta_min at t = T_max; beyond, the cosine rises
/// again with period 2 T_max, as PyTorch's does.
/// @pre T_max >= 1; eta_min >= 0 and finite
/// Example: `gkd::CosineAnnealingLR sched(opt, 30, 1e-6);`
template <Real T>
class CosineAnnealingLR : public LRScheduler<T> {
 public:
  CosineAnnealingLR(Optimizer<T>& optimizer, std::int64_t t_max, double eta_min = 0)
      : LRScheduler<T>(optimizer, "CosineAnnealingLR"), t_max_(t_max), eta_min_(eta_min) {
    GKD_CHECK(t_max >= 1, "CosineAnnealingLR", "T_max must be >= 1, got " << t_max);
    GKD_CHECK(eta_min >= 0 && std::isfinite(eta_min), "CosineAnnealingLR", "eta_min must be >= 0, got " << eta_min);
    this->start();
  }
  [[nodiscard]] double lr_at(double base, std::int64_t t) const override {
    return detail::cosine_annealing(base, eta_min_, t, t_max_);
  }

 private:
  std::int64_t t_max_;
  double eta_min_;
};

/// Linear warmup, then cosine annealing. With W = warmup_steps, N = total_steps, s = start_factor:
/// @code
///   t <  W:  lr = base * (s + (1 - s) * t / W)                                  (from s*base up)
///   t >= W:  lr = eta_min + (base - eta_min) * (1 + cos(pi * (t - W) / (N - W))) / 2
/// @endcode
/// so lr = base at t = W and eta_min at t = N (beyond N the cosine rises again, as PyTorch's).
/// This equals torch's SequentialLR([LinearLR(opt, s, 1.0, total_iters=W),
/// CosineAnnealingLR(opt, T_max=N-W, eta_min)], milestones=[W]).
/// @pre 0 <= warmup_steps < total_steps; 0 <= start_factor <= 1; eta_min >= 0
/// Example: `gkd::WarmupCosineLR sched(opt, 500, 20000);   // step() every iteration`
template <Real T>
class WarmupCosineLR : public LRScheduler<T> {
 public:
  WarmupCosineLR(Optimizer<T>& optimizer, std::int64_t warmup_steps, std::int64_t total_steps,
                 double start_factor = 1e-3, double eta_min = 0)
      : LRScheduler<T>(optimizer, "WarmupCosineLR"),
        warmup_(warmup_steps),
        total_(total_steps),
        start_factor_(start_factor),
        eta_min_(eta_min) {
    GKD_CHECK(warmup_steps >= 0 && warmup_steps < total_steps, "WarmupCosineLR",
              "need 0 <= warmup_steps < total_steps, got warmup_steps " << warmup_steps << " and total_steps "
                                                                        << total_steps);
    GKD_CHECK(start_factor >= 0 && start_factor <= 1, "WarmupCosineLR",
              "start_factor must be in [0, 1], got " << start_factor);
    GKD_CHECK(eta_min >= 0 && std::isfinite(eta_min), "WarmupCosineLR", "eta_min must be >= 0, got " << eta_min);
    this->start();
  }
  [[nodiscard]] double lr_at(double base, std::int64_t t) const override {
    if (t < warmup_)  // LinearLR's closed form with end_factor 1
      return base * (start_factor_ + (1.0 - start_factor_) * static_cast<double>(t) / static_cast<double>(warmup_));
    return detail::cosine_annealing(base, eta_min_, t - warmup_, total_ - warmup_);
  }

 private:
  std::int64_t warmup_, total_;
  double start_factor_, eta_min_;
};

/// lr = base * factor(t) for a user function (torch.optim.lr_scheduler.LambdaLR); composes
/// schedules, e.g. step decay times poly.
/// @pre factor(t) >= 0 and finite for every t reached
/// Example: `gkd::LambdaLR sched(opt, [](std::int64_t t) { return t < 50 ? 1.0 : 0.1; });`
template <Real T>
class LambdaLR : public LRScheduler<T> {
 public:
  LambdaLR(Optimizer<T>& optimizer, std::function<double(std::int64_t)> factor)
      : LRScheduler<T>(optimizer, "LambdaLR"), factor_(std::move(factor)) {
    GKD_CHECK(static_cast<bool>(factor_), "LambdaLR", "the factor function is empty");
    this->start();
  }
  [[nodiscard]] double lr_at(double base, std::int64_t t) const override {
    const double f = factor_(t);
    GKD_CHECK(f >= 0 && std::isfinite(f), "LambdaLR", "factor(" << t << ") = " << f << " is not a valid multiplier");
    return base * f;
  }

 private:
  std::function<double(std::int64_t)> factor_;
};

}  // namespace gkd
