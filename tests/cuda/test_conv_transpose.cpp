// SPDX-License-Identifier: Apache-2.0
// conv_transpose2d through cuDNN against the CPU implementation: forward, input, weight and bias
// gradients with stride, padding, output_padding (also >= stride, < dilation), dilation and groups,
// float32 (FMA math) and float64, through the legacy and the graph cuDNN API; each geometry runs twice
// per API, the second pass on cached algorithms or plans.
#include <catch2/catch.hpp>

#include "compare.hpp"
#include "gkd/cuda/linalg.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

namespace {
struct Case {
  std::string name;
  gkd::Shape x, w;  // w: [Cin, Cout/groups, kh, kw]
  gkd::Size2 stride, padding, output_padding;
  std::int64_t groups;
  gkd::Size2 dilation;
};
}  // namespace

TEST_CASE("conv_transpose2d matches the CPU forward and backward", "[cuda][conv]") {
  const std::vector<Case> cases = {
      {"2x2 stride 2 (UNet up)", {2, 4, 5, 6}, {4, 3, 2, 2}, 2, 0, 0, 1, 1},
      {"3x3 stride 2 padding 1 output_padding 1", {2, 3, 6, 5}, {3, 5, 3, 3}, 2, 1, 1, 1, 1},
      {"stride 1 padding 1", {1, 4, 7, 7}, {4, 2, 3, 3}, 1, 1, 0, 1, 1},
      {"asymmetric stride, padding, output_padding", {2, 2, 5, 4}, {2, 3, 3, 2}, {3, 2}, {1, 0}, {2, 1}, 1, 1},
      {"groups 2", {2, 4, 5, 5}, {4, 3, 3, 3}, 2, 1, 1, 2, 1},
      {"depthwise", {1, 3, 6, 6}, {3, 1, 3, 3}, 1, 1, 0, 3, 1},
      {"dilation 2 with stride 2 and output_padding 1", {2, 2, 4, 5}, {2, 3, 3, 3}, 2, 2, 1, 1, 2},
      {"1x1", {3, 5, 4, 3}, {5, 2, 1, 1}, 1, 0, 0, 1, 1},
      // output_padding not smaller than stride (but smaller than dilation): the zero-extended input path
      {"stride 1, dilation 2, output_padding 1", {2, 3, 5, 4}, {3, 2, 3, 3}, 1, 0, 1, 1, 2},
      {"stride (1, 2), dilation (3, 3), output_padding (2, 1), padding 1", {1, 2, 6, 5}, {2, 4, 2, 3}, {1, 2}, 1,
       {2, 1}, 2, 3},
  };
  for (int pass = 0; pass < 4; ++pass) {
    const auto api = gkd::test::kConvApis[pass / 2];
    const gkd::test::UseConvApi use(api);
    for (const auto& c : cases) {
      const std::string name = c.name + ", " + gkd::test::UseConvApi::name(api) + (pass % 2 ? " (cached plans)" : "");
      const auto x = random<float>(c.x, 91);
      const auto w = random<float>(c.w, 92, 0.3f);
      const auto b = random<float>({c.w[1] * c.groups}, 93);
      require_gpu_matches_cpu<float>(
          [&c](const auto& in) {
            return gkd::conv_transpose2d(in[0], in[1], in[2], c.stride, c.padding, c.output_padding, c.groups,
                                         c.dilation);
          },
          {x, w, b}, 1e-4, 1e-4, "float32 " + name);
      require_gpu_matches_cpu<double>(
          [&c](const auto& in) {
            return gkd::conv_transpose2d(in[0], in[1], Tensor<double>(), c.stride, c.padding, c.output_padding,
                                         c.groups, c.dilation);
          },
          {random<double>(c.x, 94), random<double>(c.w, 95)}, 1e-10, 1e-10, "float64 " + name);
    }
  }
}

TEST_CASE("conv2d and conv_transpose2d with TF32 allowed choose their own algorithms", "[cuda][conv]") {
  struct AllowTf32 {  // restores the default even when a REQUIRE fails
    AllowTf32() { gkd::cuda::set_allow_tf32(true); }
    ~AllowTf32() { gkd::cuda::set_allow_tf32(false); }
  };
  const auto x = random<float>({2, 8, 9, 9}, 104);
  const auto w = random<float>({8, 6, 3, 3}, 105, 0.3f);
  const auto b = random<float>({6}, 106);
  for (const auto api : gkd::test::kConvApis) {
    const gkd::test::UseConvApi use(api);
    const AllowTf32 allow;
    // TF32 keeps 10 mantissa bits of each product: about 1e-3 relative per term, so a loose bound that
    // still catches any wrong layout or algorithm (those are off by O(1)).
    require_gpu_matches_cpu<float>(
        [](const auto& in) { return gkd::conv_transpose2d(in[0], in[1], in[2], 2, 1, 1); }, {x, w, b}, 5e-2, 5e-2,
        "conv_transpose2d, TF32 allowed, " + gkd::test::UseConvApi::name(api));
    require_gpu_matches_cpu<float>([](const auto& in) { return gkd::conv2d(in[0], in[1], in[2], 1, 1); },
                                   {x, random<float>({6, 8, 3, 3}, 107, 0.3f), b}, 5e-2, 5e-2,
                                   "conv2d, TF32 allowed, " + gkd::test::UseConvApi::name(api));
  }
  // The same geometries again without TF32: strict FP32 algorithms or engines, cached under their own
  // key (a TF32 one would miss 1e-4).
  for (const auto api : gkd::test::kConvApis) {
    const gkd::test::UseConvApi use(api);
    require_gpu_matches_cpu<float>(
        [](const auto& in) { return gkd::conv_transpose2d(in[0], in[1], in[2], 2, 1, 1); }, {x, w, b}, 1e-4, 1e-4,
        "conv_transpose2d, TF32 forbidden again, " + gkd::test::UseConvApi::name(api));
  }
}

TEST_CASE("conv_transpose2d on the GPU: only the weight needs a gradient", "[cuda][conv]") {
  const auto x = random<double>({2, 3, 4, 4}, 96);
  const auto w = random<double>({3, 2, 3, 3}, 97);
  require_gpu_matches_cpu<double>(
      [](const auto& in) { return gkd::conv_transpose2d(in[0], in[1], Tensor<double>(), 2, 1, 1); }, {x, w}, 1e-10,
      1e-10, "weight gradient only", {0});
}

TEST_CASE("conv_transpose2d on the GPU rejects bad input like the CPU", "[cuda][conv]") {
  const auto x = random<float>({1, 3, 5, 5}, 98).cuda();
  REQUIRE_THROWS_WITH(gkd::conv_transpose2d(x, random<float>({2, 4, 3, 3}, 99).cuda()),
                      Catch::Contains("do not match"));
  REQUIRE_THROWS_WITH(gkd::conv_transpose2d(x, random<float>({3, 4, 3, 3}, 100).cuda(), random<float>({5}, 101).cuda()),
                      Catch::Contains("bias"));
  REQUIRE_THROWS(gkd::conv_transpose2d(x, random<float>({3, 4, 3, 3}, 102)));  // weight on the host
  // output_padding 2 with stride 2 and dilation 2 is invalid everywhere.
  REQUIRE_THROWS_WITH(gkd::conv_transpose2d(x, random<float>({3, 4, 3, 3}, 103).cuda(), Tensor<float>(), 2, 0, 2, 1, 2),
                      Catch::Contains("output_padding"));
}
