// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Batch normalisation over NCHW tensors with PyTorch's semantics, as one fused, differentiable op.
///
/// Example (a BatchNorm2d layer; the running statistics are updated in place while training):
/// @code
///   auto mean = gkd::Tensor<float>::zeros({16}), var = gkd::Tensor<float>::ones({16});
///   auto y = gkd::batch_norm2d(x, gamma, beta, mean, var, /*training=*/true);
///   auto z = gkd::batch_norm2d(x, gamma, beta, mean, var, /*training=*/false);   // inference
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
template <Real T>
Tensor<T> batch_norm2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                       const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training,
                       double momentum = 0.1, double eps = 1e-5) {
  constexpr std::string_view op = "batch_norm2d";
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

  // y = x * alpha + beta with alpha = invstd * weight, beta = bias - mean * alpha.
  Tensor<T> y = Tensor<T>::empty(x.shape());
  {
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
      for (std::int64_t j = 0; j < plane; ++j) dst[j] = src[j] * alpha + beta;
    }
  }

  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record(op, y, {x, weight, bias},
                [xc, wc, mean = std::move(mean), invstd = std::move(invstd), training, batch, channels, plane, gx, gw,
                 gb](const Tensor<T>& g) {
                  const Tensor<T> gc = g.contiguous_copy_if_needed();
                  const T* px = xc.data();
                  const T* pg = gc.data();
                  Tensor<T> dx = gx ? Tensor<T>::empty(xc.shape()) : Tensor<T>();
                  Tensor<T> dw = gw ? Tensor<T>::empty({channels}) : Tensor<T>();
                  Tensor<T> db = gb ? Tensor<T>::empty({channels}) : Tensor<T>();
                  const double count = static_cast<double>(batch * plane);
#pragma omp parallel for schedule(dynamic) if (batch * channels * plane > (1 << 15))
                  for (std::int64_t c = 0; c < channels; ++c) {
                    const double m = mean[static_cast<std::size_t>(c)], s = invstd[static_cast<std::size_t>(c)];
                    // sum of dy and of dy * (x - mean) over the channel
                    double sum_dy = 0, dot = 0;
                    for (std::int64_t n = 0; n < batch; ++n) {
                      const T* xp = px + (n * channels + c) * plane;
                      const T* gp = pg + (n * channels + c) * plane;
#pragma omp simd reduction(+ : sum_dy, dot)
                      for (std::int64_t j = 0; j < plane; ++j) {
                        const double gj = static_cast<double>(gp[j]);
                        sum_dy += gj;
                        dot += gj * (static_cast<double>(xp[j]) - m);
                      }
                    }
                    if (dw.defined()) dw.data()[c] = static_cast<T>(dot * s);
                    if (db.defined()) db.data()[c] = static_cast<T>(sum_dy);
                    if (!dx.defined()) continue;
                    const double w = wc.defined() ? static_cast<double>(wc.data()[c]) : 1.0;
                    const double scale = s * w;
                    // training: dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean))) * invstd * w
                    const double grad_mean = training ? sum_dy / count : 0.0;
                    const double proj = training ? dot * s * s / count : 0.0;
                    const T k_scale = static_cast<T>(scale), k_proj = static_cast<T>(proj);
                    const T k_mean = static_cast<T>(m), k_grad_mean = static_cast<T>(grad_mean);
                    for (std::int64_t n = 0; n < batch; ++n) {
                      const T* xp = px + (n * channels + c) * plane;
                      const T* gp = pg + (n * channels + c) * plane;
                      T* dp = dx.data() + (n * channels + c) * plane;
#pragma omp simd
                      for (std::int64_t j = 0; j < plane; ++j)
                        dp[j] = (gp[j] - k_grad_mean - (xp[j] - k_mean) * k_proj) * k_scale;
                    }
                  }
                  return std::vector<Tensor<T>>{dx, dw, db};
                });
}

}  // namespace gkd

GKD_REGISTER_OPS(norm, "batch_norm2d")
