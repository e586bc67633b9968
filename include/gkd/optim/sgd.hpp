// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
/// exactly as torch.optim.SGD. Per parameter and step, with g its gradient:
/// @code
///   g = g + weight_decay * p                        (if weight_decay != 0)
///   buf = g on the first step, else buf = momentum * buf + (1 - dampening) * g   (if momentum != 0)
///   g = nesterov ? g + momentum * buf : buf         (if momentum != 0)
///   p = p - lr * g
/// @endcode
/// The multiply-adds are fused where the CPU has FMA, as in PyTorch's CPU kernels, so given the same
/// gradients the result equals PyTorch's bit for bit. State: "momentum_buffer" (when momentum != 0).
/// Parameters on a GPU are updated by one fused launch per group doing the same operations with the
/// same roundings (gkd/cuda/optim.hpp).
/// Example:
/// @code
///   gkd::SGD<float> opt({w, b}, {.lr = 0.01, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-4});
/// @endcode
#include "gkd/optim/optimizer.hpp"

namespace gkd {

/// Hyperparameters of SGD; `lr` and `weight_decay` are the defaults of groups that set none.
struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;
  double weight_decay = 0;
  /// Ascend instead of descend (torch's `maximize`).
  bool maximize = false;
};

/// torch.optim.SGD over Tensor<T> parameters.
template <Real T>
class SGD : public Optimizer<T> {
 public:
  /// One group holding `params`.
  /// @pre params non-empty leaves that require grad; lr >= 0; momentum >= 0; weight_decay >= 0;
  ///      nesterov requires momentum > 0 and dampening == 0
  SGD(std::vector<Tensor<T>> params, SGDOptions options = {})
      : SGD(std::vector<ParamGroupOptions<T>>{{std::move(params), std::nullopt, std::nullopt}}, options) {}
  /// Several groups; each may set its own lr and weight_decay.
  SGD(std::vector<ParamGroupOptions<T>> groups, SGDOptions options)
      : Optimizer<T>("SGD", options.lr, options.weight_decay), options_(options) {
    GKD_CHECK(options.momentum >= 0 && std::isfinite(options.momentum), "SGD",
              "invalid momentum " << options.momentum);
    GKD_CHECK(std::isfinite(options.dampening), "SGD", "invalid dampening " << options.dampening);
    GKD_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0), "SGD",
              "Nesterov momentum requires a momentum > 0 and zero dampening, got momentum "
                  << options.momentum << " and dampening " << options.dampening);
    this->add_groups(std::move(groups));
  }

  [[nodiscard]] const SGDOptions& options() const noexcept { return options_; }

 protected:
  /// The update below, fused over the group's parameters on a GPU: one kernel launch.
  void update_cuda(const ParamGroup<T>& group, const std::vector<DeviceUpdate<T>>& updates) override {
#if GKD_DETAIL_CUDA_LINKED
    cuda::SGDGroup<T> g;
    g.neg_lr = static_cast<T>(-group.lr);
    g.weight_decay = static_cast<T>(group.weight_decay);
    g.momentum = static_cast<T>(options_.momentum);
    g.keep = static_cast<T>(1 - options_.dampening);
    g.decay = group.weight_decay != 0;
    g.use_momentum = options_.momentum != 0;
    g.nesterov = options_.nesterov;
    g.maximize = options_.maximize;
    g.fused_multiply_add = detail::kFusedMultiplyAdd;
    std::vector<cuda::SGDTensor<T>> tensors;
    for (const DeviceUpdate<T>& u : updates) {
      cuda::SGDTensor<T> t{u.param.data(), u.grad.data(), nullptr, u.param.numel(), false};
      if (g.use_momentum) t.momentum_buffer = this->buffer(*u.state, "momentum_buffer", u.param, &t.first).data();
      tensors.push_back(t);
    }
    cuda::sgd_step(tensors, g, updates.front().param.device().index);
#else
    Optimizer<T>::update_cuda(group, updates);
#endif
  }

  void update(const ParamGroup<T>& group, const Tensor<T>& param, const Tensor<T>& grad,
              ParamState<T>& state) override {
    const std::int64_t n = param.numel();
    T* p = param.data();
    const T* g = grad.data();
    const bool maximize = options_.maximize, decay = group.weight_decay != 0;
    const T wd = static_cast<T>(group.weight_decay);
    const T neg_lr = static_cast<T>(-group.lr);
    auto direction = [=](std::int64_t i) {
      const T gi = maximize ? -g[i] : g[i];
      return decay ? detail::fmadd(p[i], wd, gi) : gi;
    };
    if (options_.momentum == 0) {
      detail::parallel_for_each_index(n, [=](std::int64_t i) { p[i] = detail::fmadd(direction(i), neg_lr, p[i]); });
      return;
    }
    bool first = false;
    T* buf = this->buffer(state, "momentum_buffer", param, &first).data();
    const T momentum = static_cast<T>(options_.momentum);
    const T keep = static_cast<T>(1 - options_.dampening);
    const bool nesterov = options_.nesterov;
    detail::parallel_for_each_index(n, [=](std::int64_t i) {
      const T d = direction(i);
      const T b = first ? d : detail::fmadd(d, keep, buf[i] * momentum);
      buf[i] = b;
      p[i] = detail::fmadd(nesterov ? detail::fmadd(b, momentum, d) : b, neg_lr, p[i]);
    });
  }

 private:
  SGDOptions options_;
};

}  // namespace gkd
