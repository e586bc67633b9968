// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Batch normalisation over NCHW tensors with PyTorch's semantics, as one fused, differentiable op,
/// optionally followed by ReLU or ReLU6 in the same pass.
///
/// Example (a BatchNorm2d layer; the running statistics are updated in place while training):
/// @code
///   auto mean = gkd::Tensor<float>::zeros({16}), var = gkd::Tensor<float>::ones({16});
///   auto y = gkd::batch_norm2d(x, gamma, beta, mean, var, /*training=*/true);
///   auto z = gkd::batch_norm2d(x, gamma, beta, mean, var, /*training=*/false);   // inference
///   auto r = gkd::batch_norm2d(x, gamma, beta, mean, var, true, 0.1, 1e-5, gkd::FusedActivation::ReLU);
/// @endcode
#include <cmath>
#include <vector>

#include "gkd/cuda/norm.hpp"
#include "gkd/ops/elementwise.hpp"

namespace gkd {

namespace detail {

/// Per-channel statistics of a contiguous [N, C, plane] tensor: mean and biased variance, in double.
template <Real T>
void channel_moments(const T* x, std::int64_t batch, std::int64_t channels, std::int64_t plane, double* mean,
                     double* var) {
  const double count = static_cast<double>(batch * plane);
#pragma omp parallel for schedule(dynamic) if (batch * channels * plane > (1 << 15))
  for (std::int64_t c = 0; c < channels; ++c) {
    double s = 0;
    for (std::int64_t n = 0; n < batch; ++n) {
      const T* p = x + (n * channels + c) * plane;
#pragma omp simd reduction(+ : s)
      for (std::int64_t i = 0; i < plane; ++i) s += static_cast<double>(p[i]);
    }
    const double m = s / count;
    double q = 0;
    for (std::int64_t n = 0; n < batch; ++n) {
      const T* p = x + (n * channels + c) * plane;
#pragma omp simd reduction(+ : q)
      for (std::int64_t i = 0; i < plane; ++i) {
        const double d = static_cast<double>(p[i]) - m;
        q += d * d;
      }
    }
    mean[c] = m;
    var[c] = q / count;
  }
}

/// What batch_norm2d's backward reads: the contiguous input and weight (undefined without one), the
/// output when an activation was fused (its gradient mask), and the statistics used.
template <Real T>
struct BatchNormSaved {
  Tensor<T> x, weight, out;
  std::vector<double> mean, invstd;
  bool training;
  std::int64_t batch, channels, plane;
};

/// Gradients of x, weight and bias (each only when asked for) from the output gradient g, through the
/// fused activation A first.
template <FusedActivation A, Real T>
std::vector<Tensor<T>> batch_norm_backward(const BatchNormSaved<T>& s, const Tensor<T>& g, bool gx, bool gw,
                                           bool gb) {
  const Tensor<T> gc = g.contiguous_copy_if_needed();
  const std::int64_t batch = s.batch, channels = s.channels, plane = s.plane;
  const T* px = s.x.data();
  const T* pg = gc.data();
  Tensor<T> dx = gx ? Tensor<T>::empty(s.x.shape()) : Tensor<T>();
  Tensor<T> dw = gw ? Tensor<T>::empty({channels}) : Tensor<T>();
  Tensor<T> db = gb ? Tensor<T>::empty({channels}) : Tensor<T>();
  // With an activation, the gradient through it (a select on the output) is written out first, row by
  // row, into dx's memory, and both passes below read it instead of g: GCC does not vectorise the select
  // inside the double-precision reductions.
  constexpr bool masked = A != FusedActivation::None;
  const Tensor<T> masked_g = !masked ? Tensor<T>() : gx ? dx : Tensor<T>::empty(s.x.shape());
  const double count = static_cast<double>(batch * plane);
#pragma omp parallel for schedule(dynamic) if (batch * channels * plane > (1 << 15))
  for (std::int64_t c = 0; c < channels; ++c) {
    const double m = s.mean[static_cast<std::size_t>(c)], is = s.invstd[static_cast<std::size_t>(c)];
    // sum of dy and of dy * (x - mean) over the channel
    double sum_dy = 0, dot = 0;
    for (std::int64_t n = 0; n < batch; ++n) {
      const std::int64_t at = (n * channels + c) * plane;
      const T* xp = px + at;
      const T* gp = pg + at;
      if constexpr (masked) {
        const T* op = s.out.data() + at;
        T* mp = masked_g.data() + at;
#pragma omp simd
        for (std::int64_t j = 0; j < plane; ++j) {
          const T gj = gp[j];
          mp[j] = activation_passes<A>(op[j]) ? gj : T(0);
        }
        gp = mp;
      }
#pragma omp simd reduction(+ : sum_dy, dot)
      for (std::int64_t j = 0; j < plane; ++j) {
        const double gj = static_cast<double>(gp[j]);
        sum_dy += gj;
        dot += gj * (static_cast<double>(xp[j]) - m);
      }
    }
    if (dw.defined()) dw.data()[c] = static_cast<T>(dot * is);
    if (db.defined()) db.data()[c] = static_cast<T>(sum_dy);
    if (!dx.defined()) continue;
    const double w = s.weight.defined() ? static_cast<double>(s.weight.data()[c]) : 1.0;
    // training: dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean))) * invstd * w
    const T k_scale = static_cast<T>(is * w);
    const T k_proj = static_cast<T>(s.training ? dot * is * is / count : 0.0);
    const T k_mean = static_cast<T>(m), k_grad_mean = static_cast<T>(s.training ? sum_dy / count : 0.0);
    for (std::int64_t n = 0; n < batch; ++n) {
      const std::int64_t at = (n * channels + c) * plane;
      const T* xp = px + at;
      const T* gp = (masked ? masked_g.data() : pg) + at;  // in place when masked
      T* dp = dx.data() + at;
#pragma omp simd
      for (std::int64_t j = 0; j < plane; ++j) dp[j] = (gp[j] - k_grad_mean - (xp[j] - k_mean) * k_proj) * k_scale;
    }
  }
  return {dx, dw, db};
}

}  // namespace detail

/// Batch normalisation of x [N, C, H, W] per channel: y = (x - mean) / sqrt(var + eps) * weight + bias.
///
/// Training: normalises with the batch mean and biased variance, and (when given) updates the
/// running statistics in place, PyTorch's way: running = (1 - momentum) * running + momentum * stat,
/// with the unbiased variance. Evaluation: normalises with the running statistics.
/// Differentiable in x, weight and bias (one fused backward).
/// @param weight, bias      [C] or undefined tensors (`{}`) for no affine transform
/// @param running_mean, running_var [C], written in place when training (their autograd state is
///        ignored); may be undefined when training, required for evaluation
/// @param activation        applied to y in the same pass: relu(batch_norm2d(...)) and
///        relu6(batch_norm2d(...)) with the same values and gradients, bit for bit, one tensor fewer and
///        two passes over it fewer (recorded as "batch_norm2d_relu" / "batch_norm2d_relu6"; on a GPU the
///        activation runs as its own op after cuDNN's batch norm)
template <Real T>
Tensor<T> batch_norm2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                       const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training,
                       double momentum = 0.1, double eps = 1e-5, FusedActivation activation = FusedActivation::None) {
  if (activation != FusedActivation::None && x.device().is_cuda())
    return activate(batch_norm2d(x, weight, bias, running_mean, running_var, training, momentum, eps), activation);
  constexpr std::string_view names[] = {"batch_norm2d", "batch_norm2d_relu", "batch_norm2d_relu6"};
  const std::string_view op = names[static_cast<int>(activation)];
  GKD_CUDA_DISPATCH(x.device(), op, batch_norm2d(x, weight, bias, running_mean, running_var, training, momentum, eps));
  detail::check_cpu(x, op);
  GKD_CHECK(x.dim() == 4, op, "input must be 4-D (N, C, H, W), got " << to_string(x.shape()));
  const std::int64_t batch = x.shape()[0], channels = x.shape()[1], plane = x.shape()[2] * x.shape()[3];
  auto check_param = [&](const Tensor<T>& p, const char* what) {
    if (!p.defined()) return;
    detail::check_cpu(p, op);
    GKD_CHECK(p.dim() == 1 && p.shape()[0] == channels, op,
              what << " " << to_string(p.shape()) << " does not match input " << to_string(x.shape()) << " (expected ["
                   << channels << "])");
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  check_param(running_mean, "running_mean");
  check_param(running_var, "running_var");
  GKD_CHECK(training || (running_mean.defined() && running_var.defined()), op,
            "evaluation mode needs running_mean and running_var (input " << to_string(x.shape()) << ")");
  GKD_CHECK(!training || batch * plane > 1, op,
            "expected more than 1 value per channel when training, got input " << to_string(x.shape()));
  GKD_CHECK(eps >= 0, op, "eps must be non-negative, got " << eps);

  const Tensor<T> xc = x.contiguous_copy_if_needed();
  std::vector<double> mean(static_cast<std::size_t>(channels)), invstd(static_cast<std::size_t>(channels));
  if (training) {
    std::vector<double> var(static_cast<std::size_t>(channels));
    detail::channel_moments(xc.data(), batch, channels, plane, mean.data(), var.data());
    const double count = static_cast<double>(batch * plane);
    for (std::int64_t c = 0; c < channels; ++c) {
      const auto i = static_cast<std::size_t>(c);
      invstd[i] = 1.0 / std::sqrt(var[i] + eps);
      if (running_mean.defined()) {
        T& r = running_mean.data()[c * running_mean.strides()[0]];
        r = static_cast<T>(momentum * mean[i] + (1 - momentum) * static_cast<double>(r));
      }
      if (running_var.defined()) {
        T& r = running_var.data()[c * running_var.strides()[0]];
        r = static_cast<T>(momentum * var[i] * count / (count - 1) + (1 - momentum) * static_cast<double>(r));
      }
    }
  } else {
    for (std::int64_t c = 0; c < channels; ++c) {
      const auto i = static_cast<std::size_t>(c);
      mean[i] = static_cast<double>(running_mean.data()[c * running_mean.strides()[0]]);
      invstd[i] = 1.0 / std::sqrt(static_cast<double>(running_var.data()[c * running_var.strides()[0]]) + eps);
    }
  }
  const Tensor<T> wc = weight.defined() ? weight.contiguous_copy_if_needed() : Tensor<T>();
  const Tensor<T> bc = bias.defined() ? bias.contiguous_copy_if_needed() : Tensor<T>();

  // y = activation(x * alpha + beta) with alpha = invstd * weight, beta = bias - mean * alpha.
  Tensor<T> y = Tensor<T>::empty(x.shape());
  detail::with_fused_activation(activation, [&](auto act) {
    constexpr FusedActivation A = decltype(act)::value;
    const T* px = xc.data();
    T* py = y.data();
#pragma omp parallel for schedule(static) if (batch * channels * plane > (1 << 16))
    for (std::int64_t i = 0; i < batch * channels; ++i) {
      const std::int64_t c = i % channels;
      const double a = invstd[static_cast<std::size_t>(c)] * (wc.defined() ? static_cast<double>(wc.data()[c]) : 1.0);
      const T alpha = static_cast<T>(a);
      const T beta = static_cast<T>((bc.defined() ? static_cast<double>(bc.data()[c]) : 0.0) -
                                    mean[static_cast<std::size_t>(c)] * a);
      const T* src = px + i * plane;
      T* dst = py + i * plane;
#pragma omp simd
      for (std::int64_t j = 0; j < plane; ++j) dst[j] = detail::activation_value<A>(src[j] * alpha + beta);
    }
  });

  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  // The activation's gradient mask is read from the output, as relu's and relu6's own backward do.
  detail::BatchNormSaved<T> saved{xc, wc, activation == FusedActivation::None ? Tensor<T>() : y.detach(),
                                  std::move(mean), std::move(invstd), training, batch, channels, plane};
  return record(op, y, {x, weight, bias}, [saved = std::move(saved), activation, gx, gw, gb](const Tensor<T>& g) {
    return detail::with_fused_activation(activation, [&](auto act) {
      return detail::batch_norm_backward<decltype(act)::value>(saved, g, gx, gw, gb);
    });
  });
}

}  // namespace gkd

GKD_REGISTER_OPS(norm, "batch_norm2d", "batch_norm2d_relu", "batch_norm2d_relu6")
