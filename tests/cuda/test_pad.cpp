// SPDX-License-Identifier: Apache-2.0
// pad on the GPU against the CPU for every PadMode, one to three padded dims, crops, fill values and
// non-contiguous inputs, forward (exact) and backward (reflect and replicate sum several terms).
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::PadMode;
using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

namespace {
template <gkd::Real T>
void check_pad(double tol) {
  const auto x = random<T>({2, 3, 5, 6}, 111);
  const std::vector<std::vector<std::int64_t>> pad_lists = {
      {1, 2}, {2, 1, 3, 0}, {0, 0, 4, 4}, {1, 1, 1, 1, 1, 2}, {3, 2, 1, 4, 0, 0, 1, 0}};
  for (PadMode mode : {PadMode::Zero, PadMode::Reflect, PadMode::Replicate}) {
    const std::string name = "pad " + std::string(gkd::detail::pad_mode_name(mode));
    for (const auto& pads : pad_lists) {
      std::string list;
      for (auto p : pads) list += " " + std::to_string(p);
      require_gpu_matches_cpu<T>([pads, mode](const auto& in) { return gkd::pad(in[0], pads, mode); }, {x}, 0.0, tol,
                                 name + list);
    }
    require_gpu_matches_cpu<T>([mode](const auto& in) { return gkd::pad(in[0].transpose(2, 3), {2, 3, 4, 1}, mode); },
                               {x}, 0.0, tol, name + " of a transposed view");
  }
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::pad(in[0], {1, 2, 2, 1}, PadMode::Zero, T(-1.5)); },
                             {x}, 0.0, tol, "pad with a fill value");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::pad(in[0], {-1, 2, -2, -1}); }, {x}, 0.0, tol,
                             "pad with negative pads (crop)");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::pad(in[0], {}); }, {x}, 0.0, tol, "pad with no pads");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::pad(in[0], {5, 4}, PadMode::Reflect); },
                             {random<T>({4, 6}, 112)}, 0.0, tol, "reflect by size - 1");
}
}  // namespace

// float backward: reflect/replicate corners sum up to 40 gradient terms with atomics, in another order
// than the CPU, judged against 1% of the largest gradient where they nearly cancel
TEST_CASE("pad matches the CPU in every mode (float32)", "[cuda][pad]") { check_pad<float>(1e-4); }
TEST_CASE("pad matches the CPU in every mode (float64)", "[cuda][pad]") { check_pad<double>(1e-12); }

TEST_CASE("pad refuses bad arguments on the GPU as on the CPU", "[cuda][pad]") {
  const auto x = random<float>({2, 3, 4}, 113).cuda();
  REQUIRE_THROWS_WITH(gkd::pad(x, {4, 0}, PadMode::Reflect), Catch::Contains("must be smaller"));
  REQUIRE_THROWS_WITH(gkd::pad(x, {1, 1, 1}), Catch::Contains("pairs"));
  REQUIRE_THROWS_WITH(gkd::pad(x, {1, 1}, PadMode::Replicate, 2.f), Catch::Contains("takes no fill value"));
  REQUIRE_THROWS_WITH(gkd::pad(x, {-5, 0}), Catch::Contains("negative size"));
}
