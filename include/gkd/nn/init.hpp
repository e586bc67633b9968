// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Parameter initializers as torch.nn.init: each writes into a tensor in place (any layout, outside
/// autograd), draws from an explicit Generator, and returns the same tensor. Gains and fans are
/// computed exactly as PyTorch does; the random streams differ from PyTorch's (different RNG).
/// Example:
/// @code
///   gkd::Generator gen(123);
///   auto w = gkd::Tensor<float>::empty({64, 32, 3, 3});          // conv weight [out, in, kh, kw]
///   gkd::nn::init::kaiming_normal_(w, gen, 0.0, gkd::nn::init::FanMode::FanOut,
///                                  gkd::nn::init::Nonlinearity::Relu);
///   w.requires_grad();
/// @endcode
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>

#include "gkd/core/error.hpp"
#include "gkd/core/random.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::nn::init {

/// The nonlinearities of torch.nn.init.calculate_gain.
enum class Nonlinearity { Linear, Conv, Sigmoid, Tanh, Relu, LeakyRelu, Selu };

/// Which fan Kaiming initialization preserves: the forward (fan_in) or backward (fan_out) variance.
enum class FanMode { FanIn, FanOut };

/// torch.nn.init.calculate_gain: 1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
/// sqrt(2 / (1 + slope^2)) for leaky_relu (slope = `param`, default 0.01), 3/4 for selu.
/// @pre `param`, if given, is finite (it is used by leaky_relu only)
/// Example: `double g = gkd::nn::init::calculate_gain(Nonlinearity::LeakyRelu, 0.2);`
inline double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param = std::nullopt) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv:
    case Nonlinearity::Sigmoid:
      return 1;
    case Nonlinearity::Tanh:
      return 5.0 / 3;
    case Nonlinearity::Relu:
      return std::sqrt(2.0);
    case Nonlinearity::LeakyRelu: {
      const double slope = param.value_or(0.01);
      GKD_CHECK(std::isfinite(slope), "calculate_gain", "negative_slope " << slope << " is not a valid number");
      volatile double square = slope * slope;  // rounded on its own, as Python's slope ** 2
      return std::sqrt(2.0 / (1 + square));
    }
    case Nonlinearity::Selu:
      return 3.0 / 4;
  }
  GKD_FAIL("calculate_gain", "unknown nonlinearity " << static_cast<int>(nonlinearity));
}

/// fan_in and fan_out of a weight.
struct Fans {
  std::int64_t fan_in = 0;
  std::int64_t fan_out = 0;
};

/// Fans as PyTorch computes them: for [out, in, k...] (linear [out, in], conv [out, in, kh, kw]),
/// fan_in = in * prod(k), fan_out = out * prod(k).
/// @pre shape has at least 2 dims
/// Example: `compute_fans({64, 32, 3, 3})` is {288, 576}.
inline Fans compute_fans(const Shape& shape) {
  GKD_CHECK(shape.size() >= 2, "init",
            "fan in and fan out cannot be computed for a tensor with fewer than 2 dims, got " << to_string(shape));
  std::int64_t receptive = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

namespace detail {

/// Writes f() into every element of `t`, in row-major order.
template <Real T, class F>
Tensor<T> fill_with(const Tensor<T>& t, std::string_view op, F&& f) {
  GKD_CHECK(t.defined(), op, "tensor is undefined");
  GKD_CHECK(t.device() == kCPU, op, "tensor on " << t.device().str() << " (initializers run on the CPU)");
  T* d = t.data();
  gkd::detail::strided_for_each<1>(t.shape(), {&t.strides()}, [&](const auto& o) { d[o[0]] = static_cast<T>(f()); });
  return t;
}

inline std::int64_t checked_fan(const Shape& shape, FanMode mode, std::string_view op) {
  const Fans fans = compute_fans(shape);
  const std::int64_t fan = mode == FanMode::FanIn ? fans.fan_in : fans.fan_out;
  GKD_CHECK(fan > 0, op,
            (mode == FanMode::FanIn ? "fan_in" : "fan_out") << " of shape " << to_string(shape) << " is 0");
  return fan;
}

inline Fans checked_fans(const Shape& shape, std::string_view op) {
  const Fans fans = compute_fans(shape);
  GKD_CHECK(fans.fan_in > 0 && fans.fan_out > 0, op,
            "shape " << to_string(shape) << " has fan_in " << fans.fan_in << " and fan_out " << fans.fan_out
                     << "; both must be positive");
  return fans;
}

}  // namespace detail

/// Standard deviation of Kaiming init: gain(nonlinearity, a) / sqrt(fan).
/// @pre the tensor has >= 2 dims and a nonzero fan
inline double kaiming_std(const Shape& shape, double a = 0, FanMode mode = FanMode::FanIn,
                          Nonlinearity nonlinearity = Nonlinearity::LeakyRelu) {
  const std::int64_t fan = detail::checked_fan(shape, mode, "kaiming");
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}

/// Standard deviation of Xavier init: gain * sqrt(2 / (fan_in + fan_out)).
/// @pre the tensor has >= 2 dims and nonzero fans
inline double xavier_std(const Shape& shape, double gain = 1) {
  const Fans fans = detail::checked_fans(shape, "xavier");
  return gain * std::sqrt(2.0 / static_cast<double>(fans.fan_in + fans.fan_out));
}

/// Fills with U(lo, hi). @pre lo <= hi
/// Example: `uniform_(bias, gen, -0.1, 0.1);`
template <Real T>
Tensor<T> uniform_(const Tensor<T>& t, Generator& gen, double lo = 0, double hi = 1) {
  GKD_CHECK(lo <= hi && std::isfinite(lo) && std::isfinite(hi), "uniform_",
            "need finite lo <= hi, got [" << lo << ", " << hi << ")");
  return detail::fill_with(t, "uniform_", [&] { return gen.uniform(lo, hi); });
}

/// Fills with N(mean, std^2). @pre std >= 0
/// Example: `normal_(w, gen, 0.0, 0.01);`
template <Real T>
Tensor<T> normal_(const Tensor<T>& t, Generator& gen, double mean = 0, double std = 1) {
  GKD_CHECK(std >= 0 && std::isfinite(std) && std::isfinite(mean), "normal_",
            "need finite mean and std >= 0, got mean " << mean << " and std " << std);
  return detail::fill_with(t, "normal_", [&] { return std == 0 ? mean : gen.normal(mean, std); });
}

/// Fills with `value`. Example: `constant_(bn_weight, 1.0);`
template <Real T>
Tensor<T> constant_(const Tensor<T>& t, double value) {
  return detail::fill_with(t, "constant_", [value] { return value; });
}
/// Fills with 0.
template <Real T>
Tensor<T> zeros_(const Tensor<T>& t) {
  return constant_(t, 0.0);
}
/// Fills with 1.
template <Real T>
Tensor<T> ones_(const Tensor<T>& t) {
  return constant_(t, 1.0);
}

/// Xavier/Glorot uniform: U(-b, b) with b = sqrt(3) * gain * sqrt(2 / (fan_in + fan_out)).
/// @pre >= 2 dims, nonzero fans
/// Example: `xavier_uniform_(conv_w, gen);`
template <Real T>
Tensor<T> xavier_uniform_(const Tensor<T>& t, Generator& gen, double gain = 1) {
  const double bound = std::sqrt(3.0) * xavier_std(t.shape(), gain);
  return uniform_(t, gen, -bound, bound);
}

/// Xavier/Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
/// @pre >= 2 dims, nonzero fans
template <Real T>
Tensor<T> xavier_normal_(const Tensor<T>& t, Generator& gen, double gain = 1) {
  return normal_(t, gen, 0.0, xavier_std(t.shape(), gain));
}

/// Kaiming/He uniform: U(-b, b) with b = sqrt(3) * gain(nonlinearity, a) / sqrt(fan). PyTorch's
/// defaults (a = 0, fan_in, leaky_relu); nn.Linear/Conv use a = sqrt(5).
/// @pre >= 2 dims, nonzero fan
/// Example: `kaiming_uniform_(w, gen, std::sqrt(5.0));`
template <Real T>
Tensor<T> kaiming_uniform_(const Tensor<T>& t, Generator& gen, double a = 0, FanMode mode = FanMode::FanIn,
                           Nonlinearity nonlinearity = Nonlinearity::LeakyRelu) {
  const double bound = std::sqrt(3.0) * kaiming_std(t.shape(), a, mode, nonlinearity);
  return uniform_(t, gen, -bound, bound);
}

/// Kaiming/He normal: N(0, std^2) with std = gain(nonlinearity, a) / sqrt(fan).
/// @pre >= 2 dims, nonzero fan
/// Example: `kaiming_normal_(w, gen, 0.0, FanMode::FanOut, Nonlinearity::Relu);`
template <Real T>
Tensor<T> kaiming_normal_(const Tensor<T>& t, Generator& gen, double a = 0, FanMode mode = FanMode::FanIn,
                          Nonlinearity nonlinearity = Nonlinearity::LeakyRelu) {
  return normal_(t, gen, 0.0, kaiming_std(t.shape(), a, mode, nonlinearity));
}

}  // namespace gkd::nn::init
