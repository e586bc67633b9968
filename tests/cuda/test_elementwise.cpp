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

namespace {
// kernels/launch.hpp caps every grid-stride launch at 132 * 32 blocks of 256 threads: only a kernel
// given more work items than that goes round its loop a second time.
constexpr std::int64_t kGridThreads = 132 * 32 * 256;  // 1,081,344
}  // namespace

TEST_CASE("elementwise kernels past the first grid-stride pass match the CPU", "[cuda][elementwise]") {
  // sigmoid: the forward runs on 16-byte packs (numel / 2 threads' worth in float64), the backward one
  // thread per element. float64, because kFloatTol was set on about a thousand elements: over millions,
  // inputs beyond ±4 meet gradients beyond ±4, where a one-ulp difference of y in y(1 − y) already reaches
  // ~2.5e-5 of require_close's floor (1% of the largest gradient). The loop is the same template code for
  // both types, and float64 stays within kDoubleTol (a few ulp of 1e-16 against that floor, ~1e-13).
  static_assert(std::int64_t{2} * 3 * 480 * 800 / 2 > kGridThreads);
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::sigmoid(in[0]); },
                                  {random<double>({2, 3, 480, 800}, 81)}, kDoubleTol, kDoubleTol,
                                  "sigmoid of 2,304,000 elements");
  // Broadcasting add and where (index-computing kernels, one thread per output element) in float32,
  // compared exactly: each output is one IEEE addition or a selection on both devices, the gradient of
  // the operand broadcast over dim 0 is fl(g0 + g1) in either order (a two-term sum from 0 is
  // order-independent), and the other gradients are g itself or a selection of it.
  const auto a = random<float>({2, 3, 480, 400}, 82);
  const auto b = random<float>({1, 3, 480, 400}, 83);
  static_assert(std::int64_t{2} * 3 * 480 * 400 > kGridThreads);
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::add(in[0], in[1]); }, {a, b}, 0.0, 0.0,
                                 "add broadcast over dim 0, 1,152,000 outputs");
  // cond [2, 1, 480, 400]: its gradient masks (KeepIf/DropIf of cond and g) also broadcast, over all outputs
  const auto cond = gkd::gt(random<float>({2, 1, 480, 400}, 84), Tensor<float>::scalar(0.f));
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::where(in[0], in[1], in[2]); }, {cond, a, b}, 0.0,
                                 0.0, "where with broadcast condition and b, 1,152,000 outputs", {0});
}

TEST_CASE("mixed devices are refused clearly", "[cuda][elementwise]") {
  const auto a = random<float>({3}, 31);
  REQUIRE_THROWS_WITH(gkd::add(a.cuda(), a), Catch::Contains("expected a CUDA tensor"));
}
