// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Adam and AdamW, exactly as torch.optim.Adam / torch.optim.AdamW (its default single-tensor CPU
/// path). Per parameter, with t its step count (starting at 1) and g its gradient:
/// @code
///   Adam:  g = g + weight_decay * p            AdamW:  p = p * (1 - lr * weight_decay)
///   m = lerp(m, g, 1 - beta1)                  (= beta1 * m + (1 - beta1) * g)
///   v = beta2 * v + (1 - beta2) * g * g
///   v_max = max(v_max, v)                      (amsgrad; then v_max replaces v below)
///   denom = sqrt(v) / sqrt(1 - beta2^t) + eps  (eps added after the bias-corrected sqrt)
///   p = p - (lr / (1 - beta1^t)) * m / denom
/// @endcode
/// Every operation rounds as PyTorch's kernels do (scalars computed in double, then cast to T;
/// add(alpha=), addcmul and lerp fused where the CPU has FMA). Given the same gradients the result
/// equals PyTorch's bit for bit except where PyTorch's CPU sqrt (MKL's vector math, not correctly
/// rounded) is an ulp off; this sqrt is exact. State: "exp_avg", "exp_avg_sq" and, with amsgrad,
/// "max_exp_avg_sq". Parameters on a GPU are updated by one fused launch per group doing the same
/// operations with the same roundings (gkd/cuda/optim.hpp). Example:
/// @code
///   gkd::Adam<float> opt(params, {.lr = 3e-3, .weight_decay = 2e-4});
///   gkd::AdamW<float> optw(params, {.lr = 1e-3, .beta2 = 0.99});   // weight_decay 1e-2 by default
/// @endcode
#include "gkd/optim/optimizer.hpp"

namespace gkd {

/// Hyperparameters of Adam (L2 weight decay added to the gradient).
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool maximize = false;
};

/// Hyperparameters of AdamW (decoupled weight decay); as AdamOptions with weight_decay 1e-2.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

/// torch.optim.Adam; with `decoupled` (what AdamW sets) torch.optim.AdamW.
template <Real T>
class Adam : public Optimizer<T> {
 public:
  /// One group holding `params`.
  /// @pre params non-empty leaves that require grad; lr >= 0; eps >= 0; beta1, beta2 in [0, 1);
  ///      weight_decay >= 0
  Adam(std::vector<Tensor<T>> params, AdamOptions options = {})
      : Adam(std::vector<ParamGroupOptions<T>>{{std::move(params), std::nullopt, std::nullopt}}, options) {}
  /// Several groups; each may set its own lr and weight_decay.
  Adam(std::vector<ParamGroupOptions<T>> groups, AdamOptions options) : Adam("Adam", std::move(groups), options, false) {}

  [[nodiscard]] const AdamOptions& options() const noexcept { return options_; }
  /// True for AdamW's decoupled weight decay.
  [[nodiscard]] bool decoupled() const noexcept { return decoupled_; }

 protected:
  Adam(std::string name, std::vector<ParamGroupOptions<T>> groups, AdamOptions options, bool decoupled)
      : Optimizer<T>(name, options.lr, options.weight_decay), options_(options), decoupled_(decoupled) {
    GKD_CHECK(options.eps >= 0 && std::isfinite(options.eps), name, "invalid eps " << options.eps);
    GKD_CHECK(options.beta1 >= 0 && options.beta1 < 1, name, "beta1 must be in [0, 1), got " << options.beta1);
    GKD_CHECK(options.beta2 >= 0 && options.beta2 < 1, name, "beta2 must be in [0, 1), got " << options.beta2);
    this->add_groups(std::move(groups));
  }

  /// The update below, fused over the group's parameters on a GPU: one kernel launch, each
  /// parameter with the scalars of its own step count.
  void update_cuda(const ParamGroup<T>& group, const std::vector<DeviceUpdate<T>>& updates) override {
#if GKD_DETAIL_CUDA_LINKED
    const double lr = group.lr, beta1 = options_.beta1, beta2 = options_.beta2;
    cuda::AdamGroup<T> g;
    g.eps = static_cast<T>(options_.eps);
    g.weight1 = static_cast<T>(1 - beta1);
    g.small_weight = std::abs(g.weight1) < T(0.5);
    g.beta2 = static_cast<T>(beta2);
    g.one_minus_beta2 = static_cast<T>(1 - beta2);
    g.decay = group.weight_decay != 0;
    g.decoupled = decoupled_;
    g.maximize = options_.maximize;
    g.weight_decay = static_cast<T>(group.weight_decay);
    g.shrink = static_cast<T>(1 - detail::rounded_product(lr, group.weight_decay));
    g.fused_multiply_add = detail::kFusedMultiplyAdd;
    std::vector<cuda::AdamTensor<T>> tensors;
    for (const DeviceUpdate<T>& u : updates) {
      const double step = static_cast<double>(u.state->step);
      const double bias_correction1 = 1 - std::pow(beta1, step);
      const double bias_correction2 = 1 - std::pow(beta2, step);
      cuda::AdamTensor<T> t;
      t.param = u.param.data();
      t.grad = u.grad.data();
      t.exp_avg = this->buffer(*u.state, "exp_avg", u.param).data();
      t.exp_avg_sq = this->buffer(*u.state, "exp_avg_sq", u.param).data();
      t.max_exp_avg_sq = options_.amsgrad ? this->buffer(*u.state, "max_exp_avg_sq", u.param).data() : nullptr;
      t.numel = u.param.numel();
      t.neg_step_size = static_cast<T>(-(lr / bias_correction1));
      t.bias_correction2_sqrt = static_cast<T>(std::pow(bias_correction2, 0.5));
      tensors.push_back(t);
    }
    cuda::adam_step(tensors, g, updates.front().param.device().index);
#else
    Optimizer<T>::update_cuda(group, updates);
#endif
  }

  void update(const ParamGroup<T>& group, const Tensor<T>& param, const Tensor<T>& grad,
              ParamState<T>& state) override {
    const double lr = group.lr, beta1 = options_.beta1, beta2 = options_.beta2;
    const double step = static_cast<double>(state.step);
    const double bias_correction1 = 1 - std::pow(beta1, step);
    const double bias_correction2 = 1 - std::pow(beta2, step);
    const T neg_step_size = static_cast<T>(-(lr / bias_correction1));
    const T bias_correction2_sqrt = static_cast<T>(std::pow(bias_correction2, 0.5));
    const T eps = static_cast<T>(options_.eps);
    const T weight1 = static_cast<T>(1 - beta1);  // lerp weight
    const bool small_weight = std::abs(weight1) < T(0.5);
    const T b2 = static_cast<T>(beta2), one_minus_b2 = static_cast<T>(1 - beta2);
    const bool decay = group.weight_decay != 0, decoupled = decoupled_, maximize = options_.maximize;
    const T wd = static_cast<T>(group.weight_decay);
    const T shrink = static_cast<T>(1 - detail::rounded_product(lr, group.weight_decay));

    T* p = param.data();
    const T* g = grad.data();
    T* m = this->buffer(state, "exp_avg", param).data();
    T* v = this->buffer(state, "exp_avg_sq", param).data();
    T* vmax = options_.amsgrad ? this->buffer(state, "max_exp_avg_sq", param).data() : nullptr;
    detail::parallel_for_each_index(param.numel(), [=](std::int64_t i) {
      T gi = maximize ? -g[i] : g[i];
      T pi = p[i];
      if (decay) {
        if (decoupled) {
          pi = pi * shrink;
        } else {
          gi = detail::fmadd(pi, wd, gi);
        }
      }
      // lerp exactly as ATen: weight < 0.5 interpolates from m, otherwise from g.
      const T diff = gi - m[i];
      m[i] = small_weight ? detail::fmadd(weight1, diff, m[i]) : detail::fmadd(weight1 - T(1), diff, gi);
      v[i] = detail::fmadd(one_minus_b2 * gi, gi, v[i] * b2);
      T second = v[i];
      if (vmax) {
        if (!(vmax[i] >= second)) vmax[i] = second;  // torch.maximum: NaN propagates
        second = vmax[i];
      }
      const T denom = std::sqrt(second) / bias_correction2_sqrt + eps;
      p[i] = pi + neg_step_size * m[i] / denom;
    });
  }

 private:
  AdamOptions options_;
  bool decoupled_;
};

/// torch.optim.AdamW: Adam with decoupled weight decay p *= 1 - lr * weight_decay before the update.
template <Real T>
class AdamW : public Adam<T> {
 public:
  /// One group holding `params`. @pre as Adam
  AdamW(std::vector<Tensor<T>> params, AdamWOptions options = {})
      : AdamW(std::vector<ParamGroupOptions<T>>{{std::move(params), std::nullopt, std::nullopt}}, options) {}
  /// Several groups; each may set its own lr and weight_decay.
  AdamW(std::vector<ParamGroupOptions<T>> groups, AdamWOptions o)
      : Adam<T>("AdamW", std::move(groups),
                AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad, o.maximize}, true) {}
};

}  // namespace gkd
