// SPDX-License-Identifier: Apache-2.0
// Elementwise ops and activations on the GPU against the CPU implementation, forward and backward,
// with broadcasting, non-contiguous inputs, float32 and float64.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::require_gpu_matches_cpu;
using gkd::test::random;

namespace {
// float: transcendental functions differ by a few ulp between libm and CUDA's libdevice
constexpr double kFloatTol = 2e-5;
constexpr double kDoubleTol = 1e-12;

template <gkd::Real T>
void check_unary_ops(double tol) {
  const auto x = random<T>({3, 67, 5}, 11);                    // odd sizes: packed body plus scalar tail
  const auto positive = gkd::add(gkd::mul(gkd::abs(x), T(2)), T(0.25));  // for log, sqrt, pow
  const std::vector<std::pair<std::string, gkd::test::TensorFn<T>>> any_sign = {
      {"neg", [](const auto& in) { return gkd::neg(in[0]); }},
      {"add_scalar", [](const auto& in) { return gkd::add(in[0], T(1.5)); }},
      {"mul_scalar", [](const auto& in) { return gkd::mul(in[0], T(-0.75)); }},
      {"relu", [](const auto& in) { return gkd::relu(in[0]); }},
      {"relu6", [](const auto& in) { return gkd::relu6(gkd::mul(in[0], T(4))); }},
      {"leaky_relu", [](const auto& in) { return gkd::leaky_relu(in[0], T(0.2)); }},
      {"sigmoid", [](const auto& in) { return gkd::sigmoid(in[0]); }},
      {"tanh", [](const auto& in) { return gkd::tanh(in[0]); }},
      {"gelu", [](const auto& in) { return gkd::gelu(in[0]); }},
      {"gelu_tanh", [](const auto& in) { return gkd::gelu(in[0], gkd::GeluApproximation::Tanh); }},
      {"exp", [](const auto& in) { return gkd::exp(in[0]); }},
  };
  for (const auto& [name, f] : any_sign) require_gpu_matches_cpu<T>(f, {x}, tol, tol, name);
  const std::vector<std::pair<std::string, gkd::test::TensorFn<T>>> positive_only = {
      {"log", [](const auto& in) { return gkd::log(in[0]); }},
      {"sqrt", [](const auto& in) { return gkd::sqrt(in[0]); }},
      {"pow_scalar", [](const auto& in) { return gkd::pow(in[0], T(1.7)); }},
  };
  for (const auto& [name, f] : positive_only) require_gpu_matches_cpu<T>(f, {positive}, tol, tol, name);
  // a non-contiguous input
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::sigmoid(in[0].transpose(0, 2)); }, {x}, tol, tol,
                             "sigmoid of a transposed view");
}

template <gkd::Real T>
void check_binary_ops(double tol) {
  const auto a = random<T>({4, 3, 33}, 21);
  const auto same = random<T>({4, 3, 33}, 22);
  const auto row = random<T>({33}, 23);
  const auto column = random<T>({4, 3, 1}, 24);
  const auto divisor = gkd::add(gkd::abs(random<T>({3, 1}, 25)), T(0.5));
  using F = gkd::test::TensorFn<T>;
  const F add = [](const auto& in) { return gkd::add(in[0], in[1]); };
  const F sub = [](const auto& in) { return gkd::sub(in[0], in[1]); };
  const F mul = [](const auto& in) { return gkd::mul(in[0], in[1]); };
  const F div = [](const auto& in) { return gkd::div(in[0], in[1]); };
  for (const auto& [name, f] : std::vector<std::pair<std::string, F>>{{"add", add}, {"sub", sub}, {"mul", mul}}) {
    require_gpu_matches_cpu<T>(f, {a, same}, tol, tol, name + " same shape");
    require_gpu_matches_cpu<T>(f, {a, row}, tol, tol, name + " broadcast row");
    require_gpu_matches_cpu<T>(f, {column, a}, tol, tol, name + " broadcast column first");
  }
  require_gpu_matches_cpu<T>(div, {a, divisor}, tol, tol, "div broadcast");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::mul(in[0].transpose(0, 1), in[1]); },
                             {a, random<T>({3, 4, 33}, 26)}, tol, tol, "mul of a transposed view");
  // one operand needs no gradient
  require_gpu_matches_cpu<T>(mul, {a, same}, tol, tol, "mul with a constant", {1});
}
}  // namespace

TEST_CASE("unary ops match the CPU (float32)", "[cuda][elementwise]") { check_unary_ops<float>(kFloatTol); }
TEST_CASE("unary ops match the CPU (float64)", "[cuda][elementwise]") { check_unary_ops<double>(kDoubleTol); }
TEST_CASE("binary ops match the CPU (float32)", "[cuda][elementwise]") { check_binary_ops<float>(kFloatTol); }
TEST_CASE("binary ops match the CPU (float64)", "[cuda][elementwise]") { check_binary_ops<double>(kDoubleTol); }

TEST_CASE("mixed devices are refused clearly", "[cuda][elementwise]") {
  const auto a = random<float>({3}, 31);
  REQUIRE_THROWS_WITH(gkd::add(a.cuda(), a), Catch::Contains("expected a CUDA tensor"));
}
