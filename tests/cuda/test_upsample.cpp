// SPDX-License-Identifier: Apache-2.0
// upsample_bilinear2d (both align_corners modes) and upsample_nearest2d on the GPU against the CPU,
// to sizes and by scale factors, up and down, forward and backward, float32 and float64.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

namespace {
template <gkd::Real T>
void check_bilinear(double tol, double backward_tol) {
  const auto x = random<T>({2, 3, 7, 9}, 101);
  for (bool align : {false, true}) {
    const std::string mode = align ? " align_corners" : "";
    for (gkd::Size2 size :
         {gkd::Size2{14, 18}, gkd::Size2{16, 23}, gkd::Size2{4, 5}, gkd::Size2{7, 9}, gkd::Size2{1, 1}}) {
      require_gpu_matches_cpu<T>(
          [size, align](const auto& in) { return gkd::upsample_bilinear2d(in[0], size, align); }, {x}, tol,
          backward_tol, "bilinear to " + std::to_string(size.h) + "x" + std::to_string(size.w) + mode);
    }
    for (gkd::Scale2 scale : {gkd::Scale2{2.0}, gkd::Scale2{1.5, 2.5}, gkd::Scale2{0.5, 0.75}}) {
      require_gpu_matches_cpu<T>(
          [scale, align](const auto& in) { return gkd::upsample_bilinear2d(in[0], scale, align); }, {x}, tol,
          backward_tol, "bilinear by scale " + std::to_string(scale.h) + "," + std::to_string(scale.w) + mode);
    }
  }
  require_gpu_matches_cpu<T>(
      [](const auto& in) { return gkd::upsample_bilinear2d(in[0].transpose(2, 3), gkd::Size2{11, 13}, false); }, {x},
      tol, backward_tol, "bilinear of a transposed view");
}

template <gkd::Real T>
void check_nearest() {
  const auto x = random<T>({2, 3, 7, 9}, 102);
  // nearest copies elements (forward: exact) and sums up to 6 of them with atomics (backward)
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-12;
  for (gkd::Size2 size : {gkd::Size2{14, 18}, gkd::Size2{10, 20}, gkd::Size2{3, 4}, gkd::Size2{7, 9}}) {
    require_gpu_matches_cpu<T>([size](const auto& in) { return gkd::upsample_nearest2d(in[0], size); }, {x}, 0.0, tol,
                               "nearest to " + std::to_string(size.h) + "x" + std::to_string(size.w));
  }
  for (gkd::Scale2 scale : {gkd::Scale2{2.0}, gkd::Scale2{1.7, 3.0}, gkd::Scale2{0.5, 0.6}}) {
    require_gpu_matches_cpu<T>([scale](const auto& in) { return gkd::upsample_nearest2d(in[0], scale); }, {x}, 0.0,
                               tol, "nearest by scale " + std::to_string(scale.h) + "," + std::to_string(scale.w));
  }
  require_gpu_matches_cpu<T>(
      [](const auto& in) { return gkd::upsample_nearest2d(in[0].transpose(0, 1), gkd::Size2{9, 5}); }, {x}, 0.0, tol,
      "nearest of a transposed view");
}
}  // namespace

// float backward: each input sums about 20 weighted terms with atomics, in another order than the CPU,
// judged against 1% of the largest gradient where they nearly cancel
TEST_CASE("bilinear upsampling matches the CPU (float32)", "[cuda][upsample]") { check_bilinear<float>(2e-5, 1e-4); }
TEST_CASE("bilinear upsampling matches the CPU (float64)", "[cuda][upsample]") { check_bilinear<double>(1e-12, 1e-12); }
TEST_CASE("nearest upsampling matches the CPU", "[cuda][upsample]") {
  check_nearest<float>();
  check_nearest<double>();
}

TEST_CASE("upsampling past the first grid-stride pass matches the CPU", "[cuda][upsample]") {
  // One thread per output element, forward and backward (upsample_kernels.cu), in launches that
  // kernels/launch.hpp caps at 132 * 32 blocks of 256 threads: [2, 3, 240, 200] doubled has
  // [2, 3, 480, 400] outputs, more than that cap, so the first threads take a second output.
  constexpr std::int64_t kGridThreads = 132 * 32 * 256;  // 1,081,344
  static_assert(std::int64_t{2} * 3 * 480 * 400 > kGridThreads);
  // Bilinear in float64 with the float64 tolerances above: each input gradient sums 16 weighted terms by
  // atomics in any order, at most 15 roundings of 1.1e-16 of partial sums below ~20 (4 × the largest |dy|),
  // i.e. < 5e-13 of require_close's floor (1% of the largest gradient, ~0.07) even in the worst case. Not
  // float32: its forward 2e-5 was set on 378 outputs, and a few-ulp difference (FMA contraction on the GPU)
  // of products near 4 that cancel to near the ~0.03 floor reaches 1e-5 to 2e-5 among a million outputs.
  require_gpu_matches_cpu<double>(
      [](const auto& in) { return gkd::upsample_bilinear2d(in[0], gkd::Scale2{2.0}, false); },
      {random<double>({2, 3, 240, 200}, 104)}, 1e-12, 1e-12, "bilinear x2 to 1,152,000 outputs");
  // Nearest in float32 with the tolerances of check_nearest: copies forward (exact); backward, sums of 4
  // terms by atomics: 3 roundings of 6e-8 of at most ~20, < 4e-5 of the ~0.09 floor in the worst case.
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::upsample_nearest2d(in[0], gkd::Scale2{2.0}); },
                                 {random<float>({2, 3, 240, 200}, 105)}, 0.0, 1e-4,
                                 "nearest x2 to 1,152,000 outputs");
}

TEST_CASE("upsampling refuses bad input on the GPU", "[cuda][upsample]") {
  const auto x = random<float>({2, 3, 4}, 103).cuda();
  REQUIRE_THROWS_WITH(gkd::upsample_bilinear2d(x, gkd::Size2{8, 8}), Catch::Contains("4-D"));
  REQUIRE_THROWS_WITH(gkd::upsample_nearest2d(x.reshape({1, 2, 3, 4}), gkd::Size2{0, 8}),
                      Catch::Contains("must be positive"));
}
