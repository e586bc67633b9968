// SPDX-License-Identifier: Apache-2.0
// max, min, argmax, mean and var on the GPU against the CPU, forward and backward; ties send the
// gradient to the first extreme element on both devices.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_close;
using gkd::test::require_gpu_matches_cpu;

namespace {
/// Random values rounded to multiples of 0.5: many ties along every dim.
template <gkd::Real T>
Tensor<T> with_ties(const gkd::Shape& shape, std::uint64_t seed) {
  Tensor<T> x = random<T>(shape, seed);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::round(x.data()[i] * T(2)) / T(2);
  return x;
}

template <gkd::Real T>
void check_extrema() {
  const auto x = with_ties<T>({3, 6, 5, 7}, 71);
  for (std::int64_t d : {0, 1, 2, 3, -1}) {
    for (bool keep : {false, true}) {
      const std::string name = " dim " + std::to_string(d) + (keep ? " keepdim" : "");
      require_gpu_matches_cpu<T>([d, keep](const auto& in) { return gkd::max(in[0], d, keep); }, {x}, 0.0, 0.0,
                                 "max" + name);
      require_gpu_matches_cpu<T>([d, keep](const auto& in) { return gkd::min(in[0], d, keep); }, {x}, 0.0, 0.0,
                                 "min" + name);
      require_close(gkd::argmax(x.cuda(), d, keep), gkd::argmax(x, d, keep), 0.0, "argmax" + name);
    }
  }
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::max(in[0]); }, {x}, 0.0, 0.0, "max of all");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::min(in[0].transpose(1, 3)); }, {x}, 0.0, 0.0,
                             "min of all, transposed view");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::max(in[0].transpose(0, 2), 1); }, {x}, 0.0, 0.0,
                             "max of a transposed view");
  // a long reduced dim (one thread scans it)
  const auto rows = with_ties<T>({5, 3000}, 72);
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::max(in[0], 1); }, {rows}, 0.0, 0.0, "max of long rows");
  require_close(gkd::argmax(rows.cuda(), 1), gkd::argmax(rows, 1), 0.0, "argmax of long rows");
}

template <gkd::Real T>
void check_mean_var(double tol) {
  // shifted by 1 so that no mean cancels to near 0 (CUB sums in T, the CPU in double)
  const auto x = gkd::add(random<T>({4, 5, 6, 3}, 73), T(1));
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::mean(in[0]); }, {x}, tol, tol, "mean of all");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::mean(in[0], {2, 3}, true); }, {x}, tol, tol,
                             "mean over H, W keepdim");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::mean(in[0], {0, -1}); }, {x}, tol, tol,
                             "mean over dims 0 and -1");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::var(in[0], {1}); }, {x}, tol, tol, "var over dim 1");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::var(in[0], {0, 2, 3}, true, 0); }, {x}, tol, tol,
                             "biased var over N, H, W keepdim");
}
}  // namespace

TEST_CASE("max, min and argmax match the CPU with ties (float32)", "[cuda][reduce]") { check_extrema<float>(); }
TEST_CASE("max, min and argmax match the CPU with ties (float64)", "[cuda][reduce]") { check_extrema<double>(); }
TEST_CASE("mean and var match the CPU (float32)", "[cuda][reduce]") { check_mean_var<float>(2e-5); }
TEST_CASE("mean and var match the CPU (float64)", "[cuda][reduce]") { check_mean_var<double>(1e-12); }

TEST_CASE("max and argmax refuse an empty dim on the GPU", "[cuda][reduce]") {
  const auto empty = Tensor<float>::zeros({3, 0}).cuda();
  REQUIRE_THROWS_WITH(gkd::max(empty, 1), Catch::Contains("empty dim"));
  REQUIRE_THROWS_WITH(gkd::argmax(empty, 1), Catch::Contains("empty dim"));
}

namespace {
template <gkd::Real T>
void check_sums(double tol) {
  using Dims = std::vector<std::int64_t>;
  // Each case picks a path of the segmented sum: blocks over contiguous rows (with and without
  // chunks), threads over columns (with and without chunks), merged and non-contiguous dims.
  const auto image = random<T>({16, 8, 64, 64}, 81);  // a conv's bias gradient: sum over N, H, W
  const auto wide = random<T>({4096, 96}, 82);        // a linear's bias gradient: sum over rows
  const auto small = random<T>({3, 5, 7}, 83);
  for (const auto& [x, dims, what] : {std::tuple{image, Dims{0, 2, 3}, "N, H, W of an image batch"},
                                      std::tuple{image, Dims{1}, "the channels of an image batch"},
                                      std::tuple{wide, Dims{0}, "the rows of a wide matrix"},
                                      std::tuple{wide, Dims{1}, "the columns of a wide matrix"},
                                      std::tuple{small, Dims{1}, "the middle dim"},
                                      std::tuple{small, Dims{0, 2}, "the outer dims"},
                                      std::tuple{small, Dims{0, 1, 2}, "all dims"}}) {
    require_gpu_matches_cpu<T>([&dims](const auto& in) { return gkd::sum(in[0], dims); }, {x}, tol, tol,
                               std::string("sum over ") + what);
    require_gpu_matches_cpu<T>([&dims](const auto& in) { return gkd::sum(in[0].transpose(0, -1), dims, true); },
                               {x}, tol, tol, std::string("sum of a transposed view over ") + what);
  }
  // broadcasting's gradient runs the same sums: a bias added to an image batch
  const auto bias = random<T>({1, 8, 1, 1}, 84);
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::add(in[0], in[1]); }, {image, bias}, tol, tol,
                             "broadcast add's gradients");
  // a fixed summation order: the same sum twice is bit-identical
  const auto big = image.cuda();
  require_close(gkd::sum(big, {0, 2, 3}), gkd::sum(big, {0, 2, 3}), 0.0, "repeated sum");
}
}  // namespace

// float32: up to 65536 terms summed in another order than the CPU's (relative error ~ sqrt(n) * 6e-8).
TEST_CASE("sums over dims match the CPU and are deterministic (float32)", "[cuda][reduce]") { check_sums<float>(1e-4); }
TEST_CASE("sums over dims match the CPU and are deterministic (float64)", "[cuda][reduce]") {
  check_sums<double>(1e-12);
}
