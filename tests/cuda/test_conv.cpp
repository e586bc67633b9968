// SPDX-License-Identifier: Apache-2.0
// conv2d through cuDNN against the CPU implementation: forward, input, weight and bias gradients,
// with stride, padding, dilation, groups and depthwise, float32 (FMA math) and float64.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

namespace {
struct Case {
  std::string name;
  gkd::Shape x, w;
  gkd::Size2 stride, padding, dilation;
  std::int64_t groups;
};
}  // namespace

TEST_CASE("conv2d matches the CPU forward and backward", "[cuda][conv]") {
  const std::vector<Case> cases = {
      {"3x3 padding 1", {2, 3, 9, 11}, {4, 3, 3, 3}, 1, 1, 1, 1},
      {"stride 2", {2, 4, 10, 9}, {6, 4, 3, 3}, 2, 1, 1, 1},
      {"dilation 2, asymmetric", {1, 2, 12, 10}, {3, 2, 3, 2}, {1, 2}, {2, 0}, 2, 1},
      {"groups 2", {2, 4, 7, 7}, {6, 2, 3, 3}, 1, 1, 1, 2},
      {"depthwise", {2, 5, 8, 8}, {5, 1, 3, 3}, 1, 1, 1, 5},
      {"1x1", {3, 6, 5, 4}, {2, 6, 1, 1}, 1, 0, 1, 1},
  };
  for (const auto& c : cases) {
    const auto x = random<float>(c.x, 81);
    const auto w = random<float>(c.w, 82, 0.3f);
    const auto b = random<float>({c.w[0]}, 83);
    require_gpu_matches_cpu<float>(
        [&c](const auto& in) { return gkd::conv2d(in[0], in[1], in[2], c.stride, c.padding, c.dilation, c.groups); },
        {x, w, b}, 1e-4, 1e-4, "float32 " + c.name);
    require_gpu_matches_cpu<double>(
        [&c](const auto& in) { return gkd::conv2d(in[0], in[1], Tensor<double>(), c.stride, c.padding, c.dilation, c.groups); },
        {random<double>(c.x, 84), random<double>(c.w, 85)}, 1e-10, 1e-10, "float64 " + c.name);
  }
}

TEST_CASE("conv2d on the GPU rejects bad shapes like the CPU", "[cuda][conv]") {
  const auto x = random<float>({1, 3, 5, 5}, 86).cuda();
  REQUIRE_THROWS_WITH(gkd::conv2d(x, random<float>({2, 4, 3, 3}, 87).cuda()), Catch::Contains("do not match"));
  REQUIRE_THROWS_WITH(gkd::conv2d(x, random<float>({2, 3, 7, 7}, 88).cuda()), Catch::Contains("larger"));
  REQUIRE_THROWS(gkd::conv2d(x, random<float>({2, 3, 3, 3}, 89)));  // weight on the host
}
