// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Dynamic loss scaling for mixed-precision training, as torch.amp.GradScaler: the loss is
/// multiplied by a large scale before backward so that small fp16 gradients do not flush to zero,
/// the gradients are divided by it again before the optimizer step, and a step whose gradients
/// hold an inf or NaN (the scale was too large) is skipped and the scale backed off.
///
/// Contract (PyTorch's semantics, per iteration):
/// - `scale(loss)` returns loss * S, differentiable (S = `get_scale()`).
/// - `unscale(opt)` multiplies every defined gradient of `opt`'s parameters in place by 1/S (the
///   reciprocal computed in double and rounded to float, as PyTorch) and records whether any of
///   them held an inf or NaN before unscaling. Once per optimizer per iteration: a second call
///   before `update()`, or a call after `step(opt)`, is a gkd::Error. Call it yourself only to
///   inspect or clip the true gradients before `step`.
/// - `step(opt)` unscales if not done yet, then calls `opt.step()` only if every gradient was
///   finite; returns whether it stepped. A second `step(opt)` before `update()` is a gkd::Error.
/// - `update()` ends the iteration: if any optimizer saw an inf/NaN, S *= backoff_factor and the
///   growth tracker restarts; otherwise the tracker counts one more clean iteration and, when it
///   reaches growth_interval, S *= growth_factor (unless that overflows float) and restarts.
///   Calling it without any `step`/`unscale` since the last `update()` is a gkd::Error.
/// - S is kept in float (PyTorch's fp32 scale tensor): each change is computed in double and
///   rounded to float, so the sequence of scales equals PyTorch's bit for bit.
/// - Disabled (`enabled = false`): `scale` returns the loss, `unscale` does nothing, `step` just
///   steps (returns true), `update` does nothing and `get_scale()` is 1.
///
/// Gradients may live on the host or on GPUs (each optimizer group on one device). Per GPU the
/// finite check is one multi-tensor max-magnitude reduction (NaN propagates) and the unscaling one
/// multi-tensor launch of `gkd::cuda`; the found-inf flag comes back to the host, so `unscale`
/// synchronizes once per GPU holding gradients (one host sync per iteration in the usual
/// single-GPU loop). Host gradients are checked and unscaled in one pass.
///
/// Checkpoints: `state()` / `load_state()` give the scale and growth tracker; `write_state` /
/// `read_state` put them into a string map such as `gkd::io::TrainingState::user` (keys
/// "<prefix>.scale", "<prefix>.growth_tracker"; shortest round-trip decimals).
///
/// Example (the usual loop):
/// @code
///   gkd::Adam<float> opt(params, {.lr = 1e-3});
///   gkd::GradScaler<float> scaler;                    // init_scale 65536, growth every 2000 steps
///   for (int it = 0; it < n; ++it) {
///     opt.zero_grad();
///     scaler.scale(loss_fn(batch(it))).backward();     // gradients of loss * S
///     // optional: scaler.unscale(opt); gkd::clip_grad_norm(params, 1.0);
///     scaler.step(opt);                                // unscale, step unless inf/NaN
///     scaler.update();                                 // back off or grow S
///   }
/// @endcode
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/ops/elementwise.hpp"
#include "gkd/optim/clip.hpp"
#include "gkd/optim/optimizer.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/optim.hpp"
#endif

namespace gkd {

/// GradScaler's hyperparameters (torch.amp.GradScaler's arguments and defaults).
struct GradScalerOptions {
  double init_scale = 65536.0;        ///< > 0, representable as a positive finite float
  double growth_factor = 2.0;         ///< > 1
  double backoff_factor = 0.5;        ///< in (0, 1)
  std::int64_t growth_interval = 2000;  ///< >= 1 clean iterations between growths
  bool enabled = true;
};

/// What a checkpoint must keep of a GradScaler (torch's state_dict "scale" and "_growth_tracker").
struct GradScalerState {
  double scale = 65536.0;
  std::int64_t growth_tracker = 0;  ///< consecutive clean iterations since the last change of scale
};

/// Scales losses and unscales gradients for one training loop (see the file comment for the
/// contract). Holds no reference to optimizers between iterations.
template <Real T>
class GradScaler {
 public:
  /// @throws gkd::Error on options outside the ranges documented in GradScalerOptions
  explicit GradScaler(GradScalerOptions options = {}) : options_(options) {
    GKD_CHECK(options.init_scale > 0 && std::isfinite(options.init_scale), kName,
              "init_scale must be positive and finite, got " << options.init_scale);
    GKD_CHECK(options.growth_factor > 1 && std::isfinite(options.growth_factor), kName,
              "growth_factor must be > 1 and finite, got " << options.growth_factor);
    GKD_CHECK(options.backoff_factor > 0 && options.backoff_factor < 1, kName,
              "backoff_factor must be in (0, 1), got " << options.backoff_factor);
    GKD_CHECK(options.growth_interval >= 1, kName, "growth_interval must be >= 1, got " << options.growth_interval);
    scale_ = checked_float_scale(options.init_scale, "init_scale");
  }

  /// loss * S (differentiable, on the loss's device); the loss itself when disabled.
  [[nodiscard]] Tensor<T> scale(const Tensor<T>& loss) const {
    GKD_CHECK(loss.defined(), kName, "scale() got an undefined loss tensor");
    if (!options_.enabled) return loss;
    return mul(loss, static_cast<T>(scale_));
  }

  /// Divides the gradients of `opt`'s parameters by S in place and records whether any held an
  /// inf/NaN. @throws gkd::Error when called twice for `opt` since the last update(), or after step(opt)
  void unscale(Optimizer<T>& opt) {
    if (!options_.enabled) return;
    auto it = stages_.find(&opt);
    GKD_CHECK(it == stages_.end(), kName,
              (it->second.stepped ? "unscale() is being called after step() for optimizer "
                                  : "unscale() has already been called since the last update() for optimizer ")
                  << opt.name() << "; call update() to start the next iteration");
    const T inverse = static_cast<T>(to_float(1.0 / static_cast<double>(scale_)));
    const bool found_inf = unscale_grads(opt, inverse);  // recorded only once it succeeded
    stages_[&opt] = Stage{.stepped = false, .found_inf = found_inf};
  }

  /// Unscales (unless done) and steps `opt` if every gradient is finite. Returns whether it stepped.
  /// @throws gkd::Error when called twice for `opt` since the last update()
  bool step(Optimizer<T>& opt) {
    if (!options_.enabled) {
      opt.step();
      return true;
    }
    auto it = stages_.find(&opt);
    GKD_CHECK(it == stages_.end() || !it->second.stepped, kName,
              "step() has already been called since the last update() for optimizer " << opt.name());
    if (it == stages_.end()) {
      unscale(opt);
      it = stages_.find(&opt);
    }
    it->second.stepped = true;
    if (it->second.found_inf) return false;
    opt.step();
    return true;
  }

  /// Adjusts S from this iteration's inf checks and clears them (no-op when disabled).
  /// @throws gkd::Error when no step()/unscale() happened since the last update()
  void update() {
    if (!options_.enabled) return;
    GKD_CHECK(!stages_.empty(), kName,
              "update() found no inf checks since the last update(); call step(opt) (or unscale(opt)) first");
    bool found_inf = false;
    for (const auto& [opt, stage] : stages_) found_inf = found_inf || stage.found_inf;
    stages_.clear();
    if (found_inf) {
      scale_ = to_float(static_cast<double>(scale_) * options_.backoff_factor);
      growth_tracker_ = 0;
      return;
    }
    if (++growth_tracker_ < options_.growth_interval) return;
    const float grown = to_float(static_cast<double>(scale_) * options_.growth_factor);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  }

  /// S (1 when disabled).
  [[nodiscard]] double get_scale() const noexcept { return options_.enabled ? static_cast<double>(scale_) : 1.0; }
  [[nodiscard]] std::int64_t growth_tracker() const noexcept { return growth_tracker_; }
  [[nodiscard]] bool is_enabled() const noexcept { return options_.enabled; }
  [[nodiscard]] const GradScalerOptions& options() const noexcept { return options_; }

  /// The stored scale and growth tracker (take it after update(), as in PyTorch).
  [[nodiscard]] GradScalerState state() const noexcept { return {static_cast<double>(scale_), growth_tracker_}; }
  /// Restores state(); a no-op when disabled (PyTorch's load_state_dict).
  /// @throws gkd::Error on a scale that is not a positive finite float or a negative tracker
  void load_state(const GradScalerState& s) {
    if (!options_.enabled) return;
    GKD_CHECK(s.growth_tracker >= 0, kName, "growth_tracker must be >= 0, got " << s.growth_tracker);
    scale_ = checked_float_scale(s.scale, "scale");
    growth_tracker_ = s.growth_tracker;
  }

  /// Writes state() into `out` as "<prefix>.scale" and "<prefix>.growth_tracker" (e.g. into
  /// `gkd::io::TrainingState::user`); writes nothing when disabled.
  void write_state(std::map<std::string, std::string>& out, const std::string& prefix = "grad_scaler") const {
    if (!options_.enabled) return;
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<double>(scale_));
    out[prefix + ".scale"] = std::string(buf, end);
    out[prefix + ".growth_tracker"] = std::to_string(growth_tracker_);
  }
  /// Restores what write_state wrote; a no-op when disabled.
  /// @throws gkd::Error when a key is missing (e.g. saved by a disabled scaler) or malformed
  void read_state(const std::map<std::string, std::string>& in, const std::string& prefix = "grad_scaler") {
    if (!options_.enabled) return;
    GradScalerState s;
    s.scale = parse<double>(in, prefix + ".scale");
    s.growth_tracker = parse<std::int64_t>(in, prefix + ".growth_tracker");
    load_state(s);
  }

 private:
  static constexpr const char* kName = "GradScaler";

  struct Stage {
    bool stepped = false;
    bool found_inf = false;
  };

  /// v rounded to float (to-nearest), with the overflow to +-inf written out: a cast of a double
  /// beyond float's range is undefined behaviour in C++.
  static float to_float(double v) {
    // the smallest magnitude that rounds to inf: FLT_MAX plus half an ulp, (2 - 2^-24) * 2^127
    const double overflow = std::ldexp(2.0 - std::ldexp(1.0, -24), 127);
    constexpr float inf = std::numeric_limits<float>::infinity();
    if (std::abs(v) >= overflow) return v > 0 ? inf : -inf;
    return static_cast<float>(v);
  }

  static float checked_float_scale(double v, const char* what) {
    const float f = to_float(v);
    GKD_CHECK(v > 0 && std::isfinite(f) && f > 0, kName,
              what << " " << v << " is not a positive finite float (the scale is kept in float, as PyTorch)");
    return f;
  }

  template <class V>
  static V parse(const std::map<std::string, std::string>& in, const std::string& key) {
    auto it = in.find(key);
    GKD_CHECK(it != in.end(), kName,
              "no '" << key << "' in the saved state (was it saved by a disabled GradScaler?)");
    const std::string& text = it->second;
    V v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    GKD_CHECK(ec == std::errc() && end == text.data() + text.size(), kName,
              "saved '" << key << "' = '" << text << "' is not a number");
    return v;
  }

  /// Multiplies every defined gradient of `opt` by `inverse` in place; returns whether any element
  /// was inf or NaN before that. Gradients are handled per device: the host in one pass, each GPU
  /// by one reduction (one sync) and one scaling launch.
  static bool unscale_grads(Optimizer<T>& opt, T inverse) {
    std::map<int, std::vector<Tensor<T>>> by_device;  // -1: the host, else the CUDA device index
    for (const auto& group : opt.groups())
      for (const auto& p : group.params)
        if (Tensor<T> g = p.grad(); g.defined()) by_device[g.device().is_cuda() ? g.device().index : -1].push_back(g);
    bool found_inf = false;
    for (const auto& [index, grads] : by_device) {
      if (index < 0) {
        for (const auto& g : grads)
          detail::for_each_grad_element(g, [&](T& v) {
            found_inf = found_inf || !std::isfinite(v);
            v *= inverse;
          });
        continue;
      }
#if GKD_DETAIL_CUDA_LINKED
      const detail::DeviceGrads<T> d(grads);
      const T max_magnitude = cuda::grad_norm(d.spans, std::numeric_limits<double>::infinity(), index);
      found_inf = found_inf || !std::isfinite(max_magnitude);
      cuda::scale_grads(d.spans, inverse, index);
      d.write_back(grads);
#else
      detail::cuda_not_linked(kName, grads.front().device());
#endif
    }
    return found_inf;
  }

  GradScalerOptions options_;
  float scale_ = 65536.0f;
  std::int64_t growth_tracker_ = 0;
  std::map<const Optimizer<T>*, Stage> stages_;
};

}  // namespace gkd
