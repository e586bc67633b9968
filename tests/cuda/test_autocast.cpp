// SPDX-License-Identifier: Apache-2.0
// Autocast on the GPU against the CPU (the oracle): conv2d, conv_transpose2d, matmul and linear under a
// gkd::Autocast scope, forward and backward, in bfloat16 and half.
#include <catch2/catch.hpp>

#include "compare.hpp"
#include "gkd/core/autocast.hpp"
#include "gkd/ops/conv.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

TEST_CASE("autocast ops on the GPU match the CPU's", "[cuda][autocast]") {
  const auto x = random<float>({2, 3, 9, 8}, 1), w = random<float>({4, 3, 3, 3}, 2), b = random<float>({4}, 3);
  const auto wt = random<float>({3, 4, 3, 3}, 4);
  for (const gkd::Precision p : {gkd::Precision::bf16, gkd::Precision::f16}) {
    // Both devices are within half a unit in the last 16-bit place of the exact result (see
    // tests/ops/test_autocast.cpp), so they may differ by one unit: 4 u relative.
    const double tol = p == gkd::Precision::bf16 ? 0x1p-6 : 0x1p-9;
    const auto under = [p](auto f) {
      return [p, f](const std::vector<Tensor<float>>& in) {
        gkd::Autocast scope(p);
        return f(in);
      };
    };
    const std::string tag = gkd::to_string(p);
    require_gpu_matches_cpu<float>(under([](const auto& in) { return gkd::conv2d(in[0], in[1], in[2], 2, 1); }),
                                   {x, w, b}, tol, tol, "conv2d " + tag);
    require_gpu_matches_cpu<float>(
        under([](const auto& in) { return gkd::conv_transpose2d(in[0], in[1], in[2], 2, 1, 1); }), {x, wt, b}, tol,
        tol, "conv_transpose2d " + tag);
    require_gpu_matches_cpu<float>(under([](const auto& in) { return gkd::matmul(in[0], in[1]); }),
                                   {random<float>({3, 17, 33}, 5), random<float>({3, 33, 9}, 6)}, tol, tol,
                                   "matmul " + tag);
    require_gpu_matches_cpu<float>(under([](const auto& in) { return gkd::linear(in[0], in[1], in[2]); }),
                                   {random<float>({40, 24}, 7), random<float>({12, 24}, 8), random<float>({12}, 9)},
                                   tol, tol, "linear " + tag);
  }
}
