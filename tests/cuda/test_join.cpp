// SPDX-License-Identifier: Apache-2.0
// concat and stack on the GPU against the CPU along every dim, forward and backward (exact: both
// only move elements), with non-contiguous and constant inputs.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

namespace {
template <gkd::Real T>
void check_concat() {
  const auto a = random<T>({2, 3, 4, 5}, 81);
  for (std::int64_t d : {0, 1, 2, 3, -1}) {
    gkd::Shape sb = a.shape(), sc = a.shape();
    const auto k = static_cast<std::size_t>(d < 0 ? d + 4 : d);
    sb[k] = 1;
    sc[k] = 3;
    const auto b = random<T>(sb, 82), c = random<T>(sc, 83);
    require_gpu_matches_cpu<T>([d](const auto& in) { return gkd::concat({in[0], in[1], in[2]}, d); }, {a, b, c}, 0.0,
                               0.0, "concat dim " + std::to_string(d));
    require_gpu_matches_cpu<T>([d](const auto& in) { return gkd::concat({in[0], in[1]}, d); }, {a, c}, 0.0, 0.0,
                               "concat with a constant, dim " + std::to_string(d), {1});
  }
  // a transposed (non-contiguous) input, an empty part and a single tensor
  require_gpu_matches_cpu<T>(
      [](const auto& in) { return gkd::concat({in[0].transpose(0, 1), in[1]}, 1); },
      {random<T>({4, 3, 6}, 84), random<T>({3, 2, 6}, 85)}, 0.0, 0.0, "concat of a transposed view");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::concat({in[0], in[1]}, 1); },
                             {random<T>({2, 0, 3}, 86), random<T>({2, 4, 3}, 87)}, 0.0, 0.0,
                             "concat with an empty part");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::concat({in[0]}, 0); }, {random<T>({5}, 88)}, 0.0, 0.0,
                             "concat of one tensor");
}

template <gkd::Real T>
void check_stack() {
  const auto a = random<T>({3, 4, 5}, 91), b = random<T>({3, 4, 5}, 92), c = random<T>({3, 4, 5}, 93);
  for (std::int64_t d : {0, 1, 2, 3, -1, -4}) {
    require_gpu_matches_cpu<T>([d](const auto& in) { return gkd::stack({in[0], in[1], in[2]}, d); }, {a, b, c}, 0.0,
                               0.0, "stack dim " + std::to_string(d));
  }
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::stack({in[0].transpose(0, 2), in[1]}, 1); },
                             {random<T>({5, 4, 3}, 94), random<T>({3, 4, 5}, 95)}, 0.0, 0.0,
                             "stack of a transposed view, second constant", {1});
}
}  // namespace

TEST_CASE("concat matches the CPU along every dim", "[cuda][join]") {
  check_concat<float>();
  check_concat<double>();
}
TEST_CASE("stack matches the CPU along every dim", "[cuda][join]") {
  check_stack<float>();
  check_stack<double>();
}

TEST_CASE("concat and stack refuse mixed devices and bad shapes on the GPU", "[cuda][join]") {
  const auto a = random<float>({2, 3}, 96);
  REQUIRE_THROWS_WITH(gkd::concat({a.cuda(), a}, 0), Catch::Contains("one CUDA device"));
  REQUIRE_THROWS_WITH(gkd::concat({a, a.cuda()}, 0), Catch::Contains("one CUDA device"));
  REQUIRE_THROWS_WITH(gkd::concat({a.cuda(), random<float>({3, 3}, 97).cuda()}, 1), Catch::Contains("must match"));
  REQUIRE_THROWS_WITH(gkd::stack({a.cuda(), random<float>({3, 2}, 98).cuda()}, 0), Catch::Contains("must be equal"));
}
