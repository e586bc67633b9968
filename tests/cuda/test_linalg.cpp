// SPDX-License-Identifier: Apache-2.0
// matmul and linear through cuBLAS against the CPU (Eigen), forward and backward, with the TF32
// switch off (float32 exact to rounding) and on (TF32 tolerance).
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

TEST_CASE("matmul matches the CPU, 2-D and batched", "[cuda][linalg]") {
  REQUIRE_FALSE(gkd::cuda::allow_tf32());
  const auto mm = [](const auto& in) { return gkd::matmul(in[0], in[1]); };
  require_gpu_matches_cpu<float>(mm, {random<float>({37, 29}, 51), random<float>({29, 41}, 52)}, 1e-5, 1e-5, "2-D");
  require_gpu_matches_cpu<double>(mm, {random<double>({2, 3, 7, 5}, 53), random<double>({2, 3, 5, 4}, 54)}, 1e-12,
                                  1e-12, "batched float64");
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::matmul(in[0].transpose(0, 1), in[1]); },
                                 {random<float>({29, 37}, 55), random<float>({29, 8}, 56)}, 1e-5, 1e-5,
                                 "transposed operand");
  require_gpu_matches_cpu<float>(mm, {random<float>({4, 0}, 57), random<float>({0, 3}, 58)}, 0, 0, "empty inner dim");
  // Each operand is kept only for the other's gradient.
  const auto a = random<float>({19, 23}, 59), b = random<float>({23, 11}, 60);
  require_gpu_matches_cpu<float>(mm, {a, b}, 1e-5, 1e-5, "constant right operand", {1});
  require_gpu_matches_cpu<float>(mm, {a, b}, 1e-5, 1e-5, "constant left operand", {0});
}

TEST_CASE("linear matches the CPU with and without bias", "[cuda][linalg]") {
  const auto x = random<float>({6, 5, 32}, 61);
  const auto w = random<float>({24, 32}, 62, 0.2f);
  const auto b = random<float>({24}, 63);
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::linear(in[0], in[1], in[2]); }, {x, w, b}, 1e-5,
                                 1e-5, "linear with bias");
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::linear(in[0], in[1]); }, {x, w}, 1e-5, 1e-5,
                                 "linear without bias");
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::linear(in[0], in[1], in[2]); },
                                  {random<double>({9, 16}, 64), random<double>({3, 16}, 65), random<double>({3}, 66)},
                                  1e-12, 1e-12, "linear float64");
  const auto lin = [](const auto& in) { return gkd::linear(in[0], in[1], in[2]); };
  require_gpu_matches_cpu<float>(lin, {x, w, b}, 1e-5, 1e-5, "constant weight", {1});
  require_gpu_matches_cpu<float>(lin, {x, w, b}, 1e-5, 1e-5, "constant input and bias", {0, 2});
  require_gpu_matches_cpu<float>(lin, {random<float>({3, 0}, 67), random<float>({2, 0}, 68), random<float>({2}, 69)},
                                 0, 0, "empty input dim");
}

TEST_CASE("TF32 matmul is close to float32 and the switch restores full precision", "[cuda][linalg]") {
  const auto a = random<float>({256, 512}, 67);
  const auto b = random<float>({512, 128}, 68);
  const auto exact = gkd::matmul(a.to(gkd::kCPU), b);  // Eigen, float32
  auto max_abs_diff = [&](const Tensor<float>& y) {
    const auto u = y.to_vector(), v = exact.to_vector();
    double worst = 0;
    for (std::size_t i = 0; i < u.size(); ++i) worst = std::max(worst, std::abs(double(u[i]) - double(v[i])));
    return worst;
  };
  gkd::cuda::set_allow_tf32(true);
  const auto fast = gkd::matmul(a.cuda(), b.cuda());
  gkd::cuda::set_allow_tf32(false);
  const auto full = gkd::matmul(a.cuda(), b.cuda());
  // float32 with another summation order over k = 512 terms of size ~1: |error| ~ 1e-5 of the ~22
  // scale of the result; TF32 keeps 10 mantissa bits, so its error is far larger but still ~1e-3.
  const double full_error = max_abs_diff(full), fast_error = max_abs_diff(fast);
  INFO("float32 error " << full_error << ", TF32 error " << fast_error);
  REQUIRE(full_error < 1e-3);
  REQUIRE(fast_error < 0.5);
  REQUIRE(fast_error > 4 * full_error);  // the switch really changes the math
}
