// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `Conv2d` (grouped, depthwise, dilated) and `ConvTranspose2d` modules: parameters `weight` and
/// optional `bias` under PyTorch's names and shapes, PyTorch's default initialisation
/// (kaiming_uniform with a = sqrt(5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))) drawn from a Generator.
/// Channel counts are checked at construction (a gkd::Error names the layer and the numbers).
/// @code
///   gkd::Generator gen(0);
///   gkd::nn::Conv2d<float> dw({.in = 32, .out = 32, .kernel = 3, .padding = 1, .groups = 32, .bias = false}, gen);
///   gkd::nn::ConvTranspose2d<float> up({.in = 64, .out = 32, .kernel = 2, .stride = 2}, gen);
///   auto y = up.forward(dw.forward(x));
/// @endcode
#include <cmath>
#include <optional>

#include "gkd/nn/init.hpp"
#include "gkd/nn/module.hpp"
#include "gkd/ops/conv.hpp"

namespace gkd::nn {

struct Conv2dSpec {
  std::int64_t in = 0, out = 0;
  Size2 kernel = 1;
  Size2 stride = 1, padding = 0, dilation = 1;
  std::int64_t groups = 1;
  bool bias = true;
};

struct ConvTranspose2dSpec {
  std::int64_t in = 0, out = 0;
  Size2 kernel = 1;
  Size2 stride = 1, padding = 0, output_padding = 0;
  std::int64_t groups = 1;
  bool bias = true;
  Size2 dilation = 1;
};

namespace detail {
/// PyTorch's reset_parameters of conv and linear layers.
template <Real T>
void default_init(Tensor<T>& weight, Tensor<T>& bias, Generator& gen) {
  init::kaiming_uniform_(weight, gen, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::compute_fans(weight.shape()).fan_in));
    init::uniform_(bias, gen, -bound, bound);
  }
}
}  // namespace detail

template <Real T>
struct Conv2d {
  using value_type = T;
  Conv2dSpec spec;
  Tensor<T> weight, bias;

  Conv2d(const Conv2dSpec& s, Generator& gen) : spec(s) {
    GKD_CHECK(s.in > 0 && s.out > 0 && s.groups > 0 && s.in % s.groups == 0 && s.out % s.groups == 0, "Conv2d",
              "in_channels " << s.in << " and out_channels " << s.out << " must be positive and divisible by groups "
                             << s.groups);
    GKD_CHECK(s.kernel.h > 0 && s.kernel.w > 0, "Conv2d", "kernel " << s.kernel << " must be positive");
    weight = Tensor<T>::empty({s.out, s.in / s.groups, s.kernel.h, s.kernel.w});
    if (s.bias) bias = Tensor<T>::empty({s.out});
    detail::default_init(weight, bias, gen);
    weight.requires_grad();
    if (bias.defined()) bias.requires_grad();
  }
  std::int64_t in_channels() const { return spec.in; }
  std::int64_t out_channels() const { return spec.out; }
  Tensor<T> forward(const Tensor<T>& x) const {
    GKD_CHECK(x.dim() == 4 && x.shape()[1] == spec.in, "Conv2d",
              "expected input [N, " << spec.in << ", H, W], got " << to_string(x.shape()));
    return conv2d(x, weight, bias, spec.stride, spec.padding, spec.dilation, spec.groups);
  }
  template <class V>
  void visit(V& v) {
    v.parameter("weight", weight);
    if (bias.defined()) v.parameter("bias", bias);
  }
};

template <Real T>
struct ConvTranspose2d {
  using value_type = T;
  ConvTranspose2dSpec spec;
  Tensor<T> weight, bias;

  ConvTranspose2d(const ConvTranspose2dSpec& s, Generator& gen) : spec(s) {
    GKD_CHECK(s.in > 0 && s.out > 0 && s.groups > 0 && s.in % s.groups == 0 && s.out % s.groups == 0,
              "ConvTranspose2d",
              "in_channels " << s.in << " and out_channels " << s.out << " must be positive and divisible by groups "
                             << s.groups);
    weight = Tensor<T>::empty({s.in, s.out / s.groups, s.kernel.h, s.kernel.w});
    if (s.bias) bias = Tensor<T>::empty({s.out});
    detail::default_init(weight, bias, gen);
    weight.requires_grad();
    if (bias.defined()) bias.requires_grad();
  }
  std::int64_t in_channels() const { return spec.in; }
  std::int64_t out_channels() const { return spec.out; }
  Tensor<T> forward(const Tensor<T>& x) const { return forward(x, spec.output_padding); }
  /// Output of exactly `size` (H, W), as PyTorch's `forward(x, output_size)`: the output padding is
  /// chosen to reach it. @pre size is reachable (output padding below stride)
  Tensor<T> forward_to(const Tensor<T>& x, Size2 size) const {
    GKD_CHECK(x.dim() == 4, "ConvTranspose2d", "expected a 4-D input, got " << to_string(x.shape()));
    auto base = [&](std::int64_t in, std::int64_t s, std::int64_t p, std::int64_t d, std::int64_t k) {
      return (in - 1) * s - 2 * p + d * (k - 1) + 1;
    };
    const Size2 extra{size.h - base(x.shape()[2], spec.stride.h, spec.padding.h, spec.dilation.h, spec.kernel.h),
                      size.w - base(x.shape()[3], spec.stride.w, spec.padding.w, spec.dilation.w, spec.kernel.w)};
    return forward(x, extra);
  }

 private:
  Tensor<T> forward(const Tensor<T>& x, Size2 output_padding) const {
    GKD_CHECK(x.dim() == 4 && x.shape()[1] == spec.in, "ConvTranspose2d",
              "expected input [N, " << spec.in << ", H, W], got " << to_string(x.shape()));
    return conv_transpose2d(x, weight, bias, spec.stride, spec.padding, output_padding, spec.groups, spec.dilation);
  }

 public:
  template <class V>
  void visit(V& v) {
    v.parameter("weight", weight);
    if (bias.defined()) v.parameter("bias", bias);
  }
};

}  // namespace gkd::nn
