// SPDX-License-Identifier: Apache-2.0
// abs, clamp, softplus, pow(tensor, tensor), where and the comparisons on the GPU against the CPU,
// forward and backward (including the gradient conventions at ties and boundaries), float32 and
// float64, with broadcasting and non-contiguous inputs.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_close;
using gkd::test::require_gpu_matches_cpu;

namespace {
constexpr double kFloatTol = 2e-5;
constexpr double kDoubleTol = 1e-12;
// float gradients summed over broadcast dims (up to 51 terms) by atomics in another order than the
// CPU's loop, judged against 1% of the largest gradient where they nearly cancel
constexpr double kFloatSumTol = 1e-4;

/// Random values rounded to multiples of `step`: exact zeros, ties and boundary hits.
template <gkd::Real T>
Tensor<T> coarse(const gkd::Shape& shape, std::uint64_t seed, double step) {
  Tensor<T> x = random<T>(shape, seed);
  for (std::int64_t i = 0; i < x.numel(); ++i)
    x.data()[i] = static_cast<T>(std::round(static_cast<double>(x.data()[i]) / step) * step);
  return x;
}

template <gkd::Real T>
void check_unary(double tol) {
  const auto x = coarse<T>({3, 67, 5}, 51, 0.25);  // odd sizes: vector body plus scalar tail
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::abs(in[0]); }, {x}, tol, tol, "abs (zeros included)");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::clamp(in[0], T(-0.5), T(0.75)); }, {x}, tol, tol,
                             "clamp (boundary values included)");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::clamp(in[0].transpose(0, 2), T(0), T(0)); }, {x}, tol,
                             tol, "clamp to a point, transposed view");
  const auto wide = random<T>({4, 33}, 52, T(3));
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::softplus(in[0]); }, {wide}, tol, tol, "softplus");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::softplus(in[0], T(2), T(3)); }, {wide}, tol, tol,
                             "softplus beta 2 threshold 3 (both branches)");
}

template <gkd::Real T>
void check_pow_where(double tol, double sum_tol) {
  const auto base = gkd::add(gkd::abs(random<T>({4, 3, 17}, 53)), T(0.5));
  auto exponent = coarse<T>({3, 17}, 54, 0.5);  // includes exponent 0
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::pow(in[0], in[1]); }, {base, exponent}, tol, sum_tol,
                             "pow broadcast exponent");
  const auto small_base = gkd::add(gkd::abs(random<T>({4, 1, 1}, 55)), T(0.5));
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::pow(in[0], in[1]); },
                             {small_base, random<T>({4, 3, 17}, 56, T(0.5))}, tol, sum_tol, "pow broadcast base");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::pow(in[0], in[1]); }, {base, exponent}, tol, tol,
                             "pow, exponent constant", {1});

  const auto cond = gkd::gt(random<T>({4, 1, 17}, 57), Tensor<T>::scalar(T(0)));
  const auto a = random<T>({3, 17}, 58);
  const auto b = random<T>({4, 3, 1}, 59);
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::where(in[0], in[1], in[2]); }, {cond, a, b}, tol,
                             sum_tol, "where with all three broadcast", {0});
  const auto full = random<T>({4, 3, 17}, 60);
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::where(in[0], in[1].transpose(0, 1), in[2]); },
                             {gkd::gt(full, Tensor<T>::scalar(T(0.3))), random<T>({3, 4, 17}, 61), full}, tol, tol,
                             "where of a transposed view", {0});
}

template <gkd::Real T>
void check_comparisons() {
  const auto a = coarse<T>({5, 6, 7}, 62, 0.5);  // many ties
  const auto b = coarse<T>({6, 1}, 63, 0.5);
  const auto ga = a.cuda(), gb = b.cuda();
  require_close(gkd::gt(ga, gb), gkd::gt(a, b), 0.0, "gt");
  require_close(gkd::lt(ga, gb), gkd::lt(a, b), 0.0, "lt");
  require_close(gkd::eq(ga, gb), gkd::eq(a, b), 0.0, "eq");
  require_close(gkd::eq(ga.transpose(0, 2), ga.transpose(0, 2)), Tensor<T>::ones({7, 6, 5}), 0.0, "eq of a view");
  REQUIRE(gkd::gt(ga, gb).device().is_cuda());
  REQUIRE(gkd::sum(gkd::eq(a, b)).item() > 0);  // the test exercises ties
}
}  // namespace

TEST_CASE("abs, clamp and softplus match the CPU (float32)", "[cuda][elementwise]") { check_unary<float>(kFloatTol); }
TEST_CASE("abs, clamp and softplus match the CPU (float64)", "[cuda][elementwise]") { check_unary<double>(kDoubleTol); }
TEST_CASE("pow and where match the CPU (float32)", "[cuda][elementwise]") {
  check_pow_where<float>(kFloatTol, kFloatSumTol);
}
TEST_CASE("pow and where match the CPU (float64)", "[cuda][elementwise]") {
  check_pow_where<double>(kDoubleTol, kDoubleTol);
}
TEST_CASE("comparisons match the CPU exactly", "[cuda][elementwise]") {
  check_comparisons<float>();
  check_comparisons<double>();
}

TEST_CASE("new elementwise ops refuse bad arguments on the GPU as on the CPU", "[cuda][elementwise]") {
  const auto x = random<float>({3}, 64).cuda();
  REQUIRE_THROWS_WITH(gkd::clamp(x, 1.f, 0.f), Catch::Contains("greater than max"));
  REQUIRE_THROWS_WITH(gkd::softplus(x, 0.f), Catch::Contains("beta must be positive"));
  REQUIRE_THROWS_WITH(gkd::where(x, x, random<float>({3}, 65)), Catch::Contains("expected a CUDA tensor"));
  REQUIRE_THROWS_WITH(gkd::pow(x, random<float>({4}, 66).cuda()), Catch::Contains("cannot be broadcast"));
}
