// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The base of every optimizer: parameter groups (each with its own learning rate and weight
/// decay), `zero_grad()`, `step()`, and per-parameter state that can be enumerated by name for
/// checkpoints.
///
/// Semantics follow torch.optim: parameters are leaf tensors that require grad; `step()` updates
/// their data in place, outside autograd; a parameter whose gradient is undefined (no backward
/// reached it, or `zero_grad()` dropped it) is skipped and its state left untouched.
///
/// Parameters may live on the host or on a GPU, one device per group. A group on a GPU is updated by
/// one fused kernel launch per `step()` (the `gkd::cuda` multi-tensor updates, when the program links
/// `gkd::cuda`), with the same arithmetic as the host; its state buffers live on the parameters'
/// device (buffers restored on the host are moved there on the next step). Example:
/// @code
///   gkd::SGD<float> opt({w, b}, {.lr = 0.1, .momentum = 0.9});
///   opt.add_param_group({head}, /*lr=*/0.01);        // a second group with its own lr
///   for (int it = 0; it < n; ++it) {
///     opt.zero_grad();
///     loss(w, b, head).backward();
///     opt.step();
///   }
/// @endcode
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "gkd/autograd/node.hpp"
#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/optim.hpp"
#endif

namespace gkd {

/// Parameters sharing hyperparameters, as held by an optimizer (torch's `param_groups[i]`).
template <Real T>
struct ParamGroup {
  std::vector<Tensor<T>> params;
  double lr = 0;
  double weight_decay = 0;
  /// The lr when the first LR scheduler attached (torch's `group["initial_lr"]`); schedules are
  /// computed from it. Unset until a scheduler attaches.
  std::optional<double> initial_lr;
};

/// A group as the user describes it: unset values take the optimizer's defaults.
/// Example: `gkd::Adam<float> opt({{.params = {w}}, {.params = {b}, .lr = 1e-2}}, {.lr = 1e-3});`
template <Real T>
struct ParamGroupOptions {
  std::vector<Tensor<T>> params = {};
  std::optional<double> lr = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

/// The state an optimizer keeps for one parameter: how many updates it received and named buffers
/// shaped like the parameter ("momentum_buffer" for SGD; "exp_avg", "exp_avg_sq",
/// "max_exp_avg_sq" for Adam), created on the parameter's first update.
template <Real T>
struct ParamState {
  /// Number of `step()` calls that updated this parameter (torch's `state["step"]` for Adam).
  std::int64_t step = 0;
  std::map<std::string, Tensor<T>> buffers;

  [[nodiscard]] bool has(const std::string& name) const { return buffers.count(name) != 0; }
  /// The buffer called `name`. @pre has(name)
  [[nodiscard]] const Tensor<T>& at(const std::string& name) const {
    auto it = buffers.find(name);
    GKD_CHECK(it != buffers.end(), "optimizer state", "no buffer '" << name << "' in this parameter's state");
    return it->second;
  }
};

namespace detail {

inline constexpr std::int64_t kOptimParallelGrain = 1 << 15;

/// a * b + c with one rounding where the hardware has FMA (as PyTorch's AVX2/AVX-512 CPU kernels
/// compute add(alpha=), addcmul and lerp), two roundings otherwise.
template <Real T>
inline T fmadd(T a, T b, T c) {
#if defined(FP_FAST_FMA) && defined(FP_FAST_FMAF)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

/// Whether fmadd rounds once: the GPU updates follow the host code's choice.
inline constexpr bool kFusedMultiplyAdd =
#if defined(FP_FAST_FMA) && defined(FP_FAST_FMAF)
    true;
#else
    false;
#endif

/// a * b rounded on its own, so that the compiler cannot fuse it into a following addition
/// (-ffp-contract=fast would, where Python rounds twice).
inline double rounded_product(double a, double b) {
  volatile double p = a * b;
  return p;
}

/// Calls f(i) for i in [0, n), in parallel when n is large (elementwise updates only).
template <class F>
inline void parallel_for_each_index(std::int64_t n, F&& f) {
#pragma omp parallel for simd if (n > kOptimParallelGrain)
  for (std::int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace detail

/// A parameter of a GPU group that gets an update this step, as handed to `Optimizer::update_cuda`:
/// its gradient (contiguous, on the parameter's device) and its state, whose step count has already
/// been incremented.
template <Real T>
struct DeviceUpdate {
  Tensor<T> param;
  Tensor<T> grad;
  ParamState<T>* state = nullptr;
};

/// Base class of optimizers over Tensor<T> parameters. Not copyable: the state shares storage
/// with nothing else, and LR schedulers hold a reference to the optimizer.
template <Real T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Applies one update to every parameter whose gradient is defined (one kernel launch per group
  /// on a GPU).
  /// @pre every defined gradient has its parameter's shape and device
  void step() {
    NoGrad guard;
    std::size_t flat = 0;
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
      const ParamGroup<T>& group = groups_[gi];
      if (group.params.front().device().is_cuda()) {
        step_device_group(gi, flat);
        flat += group.params.size();
        continue;
      }
      for (std::size_t pi = 0; pi < group.params.size(); ++pi, ++flat) {
        const Tensor<T>& p = group.params[pi];
        Tensor<T> grad = checked_grad(p, gi, pi);
        if (!grad.defined()) continue;
        grad = grad.contiguous_copy_if_needed();
        ParamState<T>& s = state_[flat];
        ++s.step;
        update(group, p, grad, s);
      }
    }
  }

  /// Drops every parameter's gradient (torch's default `set_to_none=True`), or zeroes it in place.
  void zero_grad(bool set_to_none = true) {
    for (auto& group : groups_)
      for (auto& p : group.params) {
        if (set_to_none) {
          p.zero_grad();
        } else if (Tensor<T> g = p.grad(); g.defined() && g.device().is_cuda()) {
          detail::copy_into(g, Tensor<T>::zeros(g.shape(), g.device()));
        } else if (g.defined()) {
          detail::strided_for_each<1>(g.shape(), {&g.strides()}, [d = g.data()](const auto& o) { d[o[0]] = T(0); });
        }
      }
  }

  /// Adds a group; unset `lr` / `weight_decay` take the optimizer's defaults.
  /// @pre params non-empty, each a defined contiguous leaf that requires grad, in no other group, all
  ///      on one device (the host or one GPU);
  ///      lr >= 0, weight_decay >= 0
  /// Example: `opt.add_param_group({decoder_w, decoder_b}, 1e-4);`
  void add_param_group(std::vector<Tensor<T>> params, std::optional<double> lr = std::nullopt,
                       std::optional<double> weight_decay = std::nullopt) {
    add_param_group(ParamGroupOptions<T>{std::move(params), lr, weight_decay});
  }
  void add_param_group(ParamGroupOptions<T> options) {
    GKD_CHECK(!options.params.empty(), name_, "got an empty parameter list for group " << groups_.size());
    ParamGroup<T> group;
    group.lr = options.lr.value_or(default_lr_);
    group.weight_decay = options.weight_decay.value_or(default_weight_decay_);
    check_lr(group.lr);
    check_weight_decay(group.weight_decay);
    for (std::size_t i = 0; i < options.params.size(); ++i) {
      const Tensor<T>& p = options.params[i];
      GKD_CHECK(p.defined(), name_, "parameter " << i << " of group " << groups_.size() << " is an undefined tensor");
      GKD_CHECK(p.requires_grad_flag(), name_,
                "parameter " << i << " of group " << groups_.size() << " (shape " << to_string(p.shape())
                             << ") does not require grad; call requires_grad() on it or leave it out");
      GKD_CHECK(p.is_leaf(), name_,
                "parameter " << i << " of group " << groups_.size() << " was produced by '" << p.grad_fn_name()
                             << "'; only leaf tensors can be optimized");
      GKD_CHECK(p.is_contiguous(), name_,
                "parameter " << i << " of group " << groups_.size() << " (shape " << to_string(p.shape())
                             << ") is not contiguous");
      GKD_CHECK(p.device() == options.params.front().device(), name_,
                "parameter " << i << " of group " << groups_.size() << " is on " << p.device().str()
                             << " but parameter 0 is on " << options.params.front().device().str()
                             << "; the parameters of a group must be on one device (no mixed CPU/CUDA groups)");
      if (p.device().is_cuda() && !GKD_DETAIL_CUDA_LINKED) detail::cuda_not_linked(name_, p.device());
      GKD_CHECK(seen_.insert(p.meta().get()).second, name_,
                "parameter " << i << " of group " << groups_.size() << " (shape " << to_string(p.shape())
                             << ") already appears in a parameter group");
    }
    group.params = std::move(options.params);
    state_.resize(state_.size() + group.params.size());
    groups_.push_back(std::move(group));
  }

  // ---- groups ----------------------------------------------------------------------------------
  [[nodiscard]] std::size_t num_groups() const noexcept { return groups_.size(); }
  [[nodiscard]] const ParamGroup<T>& group(std::size_t i) const { return groups_.at(checked_group(i)); }
  [[nodiscard]] const std::vector<ParamGroup<T>>& groups() const noexcept { return groups_; }
  /// Learning rate of group `i`.
  [[nodiscard]] double lr(std::size_t i = 0) const { return groups_[checked_group(i)].lr; }
  /// Sets the learning rate of group `i` (what LR schedulers do each step). @pre lr >= 0
  void set_lr(std::size_t i, double lr) {
    check_lr(lr);
    groups_[checked_group(i)].lr = lr;
  }
  /// Sets the weight decay of group `i`. @pre weight_decay >= 0
  void set_weight_decay(std::size_t i, double weight_decay) {
    check_weight_decay(weight_decay);
    groups_[checked_group(i)].weight_decay = weight_decay;
  }
  /// Sets group `i`'s `initial_lr` (schedulers set it when they attach; checkpoints restore it).
  void set_initial_lr(std::size_t i, double lr) {
    check_lr(lr);
    groups_[checked_group(i)].initial_lr = lr;
  }

  // ---- state -----------------------------------------------------------------------------------
  /// Number of parameters over all groups; flat index = position in group order, as in torch's
  /// `state_dict()["state"]`.
  [[nodiscard]] std::size_t num_params() const noexcept { return state_.size(); }
  /// The parameter with flat index `i`.
  [[nodiscard]] const Tensor<T>& param(std::size_t i) const {
    check_flat(i);
    for (const auto& g : groups_) {
      if (i < g.params.size()) return g.params[i];
      i -= g.params.size();
    }
    return groups_.back().params.back();  // unreachable
  }
  /// State of the parameter with flat index `i` (mutable, so that checkpoints can restore it).
  [[nodiscard]] ParamState<T>& state(std::size_t i) { return state_[check_flat(i)]; }
  [[nodiscard]] const ParamState<T>& state(std::size_t i) const { return state_[check_flat(i)]; }
  /// Every state buffer as ("<flat index>.<buffer name>", tensor), e.g. ("3.exp_avg", ...), in
  /// flat-index order; step counts are `state(i).step`.
  [[nodiscard]] std::vector<std::pair<std::string, Tensor<T>>> named_state() const {
    std::vector<std::pair<std::string, Tensor<T>>> out;
    for (std::size_t i = 0; i < state_.size(); ++i)
      for (const auto& [name, t] : state_[i].buffers) out.emplace_back(std::to_string(i) + "." + name, t);
    return out;
  }
  /// "SGD", "Adam", "AdamW": the component named in error messages.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 protected:
  /// @param name  component named in errors
  /// @param default_lr, default_weight_decay  values for groups that do not set their own
  Optimizer(std::string name, double default_lr, double default_weight_decay)
      : name_(std::move(name)), default_lr_(default_lr), default_weight_decay_(default_weight_decay) {
    check_lr(default_lr_);
    check_weight_decay(default_weight_decay_);
  }
  /// Adds the constructor's groups. @pre at least one group
  void add_groups(std::vector<ParamGroupOptions<T>> groups) {
    GKD_CHECK(!groups.empty(), name_, "got an empty list of parameter groups");
    for (auto& g : groups) add_param_group(std::move(g));
  }

  /// Updates `param` in place from `grad` (contiguous, same shape) for one step; `state.step` has
  /// already been incremented.
  virtual void update(const ParamGroup<T>& group, const Tensor<T>& param, const Tensor<T>& grad,
                      ParamState<T>& state) = 0;
  /// Updates every parameter of `updates` (a group on a GPU, at least one parameter) in one fused
  /// launch. The default throws: an optimizer without a GPU implementation.
  virtual void update_cuda(const ParamGroup<T>& group, const std::vector<DeviceUpdate<T>>& updates) {
    (void)group;
    GKD_FAIL(name_, "has no CUDA implementation; cannot update " << updates.size() << " parameters on "
                                                               << updates.front().param.device().str());
  }

  /// The buffer `name` of `state`, created as zeros shaped like `param` when absent; `created`
  /// tells whether it was just made.
  static Tensor<T>& buffer(ParamState<T>& state, const std::string& name, const Tensor<T>& param,
                           bool* created = nullptr) {
    auto it = state.buffers.find(name);
    if (created) *created = it == state.buffers.end();
    if (it == state.buffers.end()) {
      it = state.buffers.emplace(name, Tensor<T>::zeros(param.shape(), param.device())).first;
    } else if (it->second.device() != param.device()) {
      it->second = it->second.to(param.device());  // e.g. restored from a checkpoint on the host
    }
    GKD_CHECK(it->second.shape() == param.shape() && it->second.is_contiguous(), "optimizer state",
              "buffer '" << name << "' has shape " << to_string(it->second.shape()) << " for a parameter of shape "
                         << to_string(param.shape()));
    return it->second;
  }

  void check_lr(double lr) const { GKD_CHECK(lr >= 0 && std::isfinite(lr), name_, "invalid learning rate " << lr); }
  void check_weight_decay(double wd) const {
    GKD_CHECK(wd >= 0 && std::isfinite(wd), name_, "invalid weight_decay " << wd);
  }

 private:
  /// The gradient of parameter `pi` of group `gi` (undefined when it has none), checked to have the
  /// parameter's shape and device.
  Tensor<T> checked_grad(const Tensor<T>& p, std::size_t gi, std::size_t pi) const {
    Tensor<T> grad = p.grad();
    if (!grad.defined()) return grad;
    GKD_CHECK(grad.shape() == p.shape(), name_,
              "gradient of shape " << to_string(grad.shape()) << " for parameter " << pi << " of group " << gi
                                   << " with shape " << to_string(p.shape()));
    GKD_CHECK(grad.device() == p.device(), name_,
              "gradient on " << grad.device().str() << " for parameter " << pi << " of group " << gi << " on "
                             << p.device().str());
    return grad;
  }

  /// Steps group `gi` (on a GPU; its first parameter has flat index `flat`).
  void step_device_group(std::size_t gi, std::size_t flat) {
    const ParamGroup<T>& group = groups_[gi];
    std::vector<DeviceUpdate<T>> updates;
    for (std::size_t pi = 0; pi < group.params.size(); ++pi) {
      const Tensor<T>& p = group.params[pi];
      const Tensor<T> grad = checked_grad(p, gi, pi);
      if (!grad.defined()) continue;
      updates.push_back({p, grad.contiguous_copy_if_needed(), &state_[flat + pi]});
    }
    if (updates.empty()) return;
    for (auto& u : updates) ++u.state->step;
    update_cuda(group, updates);
  }

  std::size_t checked_group(std::size_t i) const {
    GKD_CHECK(i < groups_.size(), name_, "group index " << i << " out of range for " << groups_.size() << " groups");
    return i;
  }
  std::size_t check_flat(std::size_t i) const {
    GKD_CHECK(i < state_.size(), name_, "parameter index " << i << " out of range for " << state_.size()
                                                           << " parameters");
    return i;
  }

  std::string name_;
  double default_lr_;
  double default_weight_decay_;
  std::vector<ParamGroup<T>> groups_;
  std::vector<ParamState<T>> state_;
  std::unordered_set<const void*> seen_;
};

}  // namespace gkd
