// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Gradient clipping as torch.nn.utils.clip_grad_norm_ / clip_grad_value_: both modify the
/// gradients of the given parameters in place and skip parameters whose gradient is undefined.
/// Gradients on a GPU (all on one device) are measured by one multi-tensor reduction and scaled by
/// one multi-tensor launch of `gkd::cuda` (the total norm comes back to the host); mixing host and
/// GPU gradients is an error. Example:
/// @code
///   loss.backward();
///   const float norm = gkd::clip_grad_norm(params, 1.0);   // rescale so the global L2 norm <= 1
///   opt.step();
/// @endcode
#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/optim.hpp"
#endif

namespace gkd {

namespace detail {

/// Calls f(element&) for every element of the (possibly strided) tensor `t`.
template <Real T, class F>
void for_each_grad_element(const Tensor<T>& t, F&& f) {
  T* d = t.data();
  if (t.is_contiguous()) {
    const std::int64_t n = t.numel();
    for (std::int64_t i = 0; i < n; ++i) f(d[i]);
    return;
  }
  strided_for_each<1>(t.shape(), {&t.strides()}, [&](const auto& o) { f(d[o[0]]); });
}

/// The p-norm of the values in `t` (p = inf: the largest magnitude), accumulated in double.
template <Real T>
double grad_vector_norm(const Tensor<T>& t, double p) {
  double acc = 0;
  if (std::isinf(p)) {
    for_each_grad_element(t, [&](T v) {
      const double a = std::abs(static_cast<double>(v));
      if (std::isnan(a) || a > acc) acc = a;  // once NaN, stays NaN (as torch)
    });
    return acc;
  }
  if (p == 2) {
    for_each_grad_element(t, [&](T v) { acc += static_cast<double>(v) * static_cast<double>(v); });
    return std::sqrt(acc);
  }
  if (p == 1) {
    for_each_grad_element(t, [&](T v) { acc += std::abs(static_cast<double>(v)); });
    return acc;
  }
  for_each_grad_element(t, [&](T v) { acc += std::pow(std::abs(static_cast<double>(v)), p); });
  return std::pow(acc, 1 / p);
}

/// The device of `grads` (non-empty), which must all be on one device.
template <Real T>
Device common_grad_device(const std::vector<Tensor<T>>& grads, std::string_view op) {
  const Device device = grads.front().device();
  for (std::size_t i = 0; i < grads.size(); ++i)
    GKD_CHECK(grads[i].device() == device, op,
              "gradient " << i << " is on " << grads[i].device().str() << " but the first gradient is on "
                          << device.str() << "; all gradients must be on one device (no mixed CPU/CUDA)");
  return device;
}

#if GKD_DETAIL_CUDA_LINKED
/// Contiguous device copies (or the gradients themselves) and their spans, for the multi-tensor kernels.
template <Real T>
struct DeviceGrads {
  std::vector<Tensor<T>> dense;
  std::vector<cuda::GradSpan<T>> spans;
  explicit DeviceGrads(const std::vector<Tensor<T>>& grads) {
    for (const auto& g : grads) {
      dense.push_back(g.contiguous_copy_if_needed());
      spans.push_back({dense.back().data(), dense.back().numel()});
    }
  }
  /// Writes the copies made for non-contiguous gradients back into them.
  void write_back(const std::vector<Tensor<T>>& grads) const {
    for (std::size_t i = 0; i < grads.size(); ++i)
      if (!grads[i].is_contiguous()) copy_into(grads[i], dense[i]);
  }
};
#endif

}  // namespace detail

/// Rescales the gradients of `params` so that their total `norm_type`-norm (the norm of the
/// per-parameter gradient norms, as if all gradients were one vector) is at most `max_norm`:
/// every gradient is multiplied by min(1, max_norm / (total + 1e-6)). Returns the total norm
/// before clipping (0 when no parameter has a gradient).
/// @param norm_type  p > 0 of the p-norm; `std::numeric_limits<double>::infinity()` for the max norm
/// @param error_if_nonfinite  throw when the total norm is NaN or infinite (gradients untouched)
/// @pre max_norm >= 0
/// Example: `auto total = gkd::clip_grad_norm(params, 5.0, 2.0);`
template <Real T>
T clip_grad_norm(const std::vector<Tensor<T>>& params, double max_norm, double norm_type = 2.0,
                 bool error_if_nonfinite = false) {
  GKD_CHECK(max_norm >= 0 && !std::isnan(max_norm), "clip_grad_norm", "max_norm must be >= 0, got " << max_norm);
  GKD_CHECK(norm_type > 0, "clip_grad_norm", "norm_type must be positive (or infinity), got " << norm_type);
  std::vector<Tensor<T>> grads;
  for (const auto& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return T(0);
  if (const Device device = detail::common_grad_device(grads, "clip_grad_norm"); device.is_cuda()) {
#if GKD_DETAIL_CUDA_LINKED
    const detail::DeviceGrads<T> d(grads);
    const T total = cuda::grad_norm(d.spans, norm_type, device.index);
    GKD_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm",
              "the total norm of order " << norm_type << " of the gradients is " << total
                                         << "; pass error_if_nonfinite=false to clip anyway");
    const T coef = static_cast<T>(max_norm) / (total + static_cast<T>(1e-6));
    if (!(coef >= T(1))) {
      cuda::scale_grads(d.spans, coef, device.index);
      d.write_back(grads);
    }
    return total;
#else
    detail::cuda_not_linked("clip_grad_norm", device);
#endif
  }
  // As PyTorch: each gradient's norm is a T value, then the norm of those norms.
  std::vector<T> norms;
  for (const auto& g : grads) norms.push_back(static_cast<T>(detail::grad_vector_norm(g, norm_type)));
  const T total = static_cast<T>(detail::grad_vector_norm(Tensor<T>::from({static_cast<std::int64_t>(norms.size())}, norms),
                                                     norm_type));
  GKD_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm",
            "the total norm of order " << norm_type << " of the gradients is " << total
                                       << "; pass error_if_nonfinite=false to clip anyway");
  const T coef = static_cast<T>(max_norm) / (total + static_cast<T>(1e-6));
  if (!(coef >= T(1)))  // multiplying by the clamped 1 would change nothing; a NaN coef poisons, as in torch
    for (const auto& g : grads) detail::for_each_grad_element(g, [coef](T& v) { v *= coef; });
  return total;
}

/// Clamps every gradient element of `params` to [-clip_value, clip_value] (one launch on a GPU).
/// @pre clip_value >= 0
/// Example: `gkd::clip_grad_value(params, 0.5);`
template <Real T>
void clip_grad_value(const std::vector<Tensor<T>>& params, double clip_value) {
  GKD_CHECK(clip_value >= 0 && !std::isnan(clip_value), "clip_grad_value",
            "clip_value must be >= 0, got " << clip_value);
  const T hi = static_cast<T>(clip_value);
  std::vector<Tensor<T>> grads;
  for (const auto& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  if (const Device device = detail::common_grad_device(grads, "clip_grad_value"); device.is_cuda()) {
#if GKD_DETAIL_CUDA_LINKED
    const detail::DeviceGrads<T> d(grads);
    cuda::clamp_grads(d.spans, hi, device.index);
    d.write_back(grads);
    return;
#else
    detail::cuda_not_linked("clip_grad_value", device);
#endif
  }
  for (const auto& p : params) {
    if (!p.defined()) continue;
    const Tensor<T> g = p.grad();
    if (!g.defined()) continue;
    detail::for_each_grad_element(g, [hi](T& v) { v = std::clamp(v, -hi, hi); });
  }
}

}  // namespace gkd
