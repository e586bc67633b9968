// SPDX-License-Identifier: Apache-2.0
// conv2d through cuDNN against the CPU implementation: forward, input, weight and bias gradients,
// with stride, padding, dilation, groups and depthwise, float32 (FMA math) and float64, through the legacy
// and the graph cuDNN API; and conv2d,
// conv_transpose2d, matmul and linear under gkd::Autocast (bf16, f16) against the CPU's autocast.
#include <catch2/catch.hpp>

#include "compare.hpp"
#include "gkd/core/autocast.hpp"
#include "gkd/cuda/conv.hpp"
#include "gkd/ops/conv.hpp"

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
  for (const auto api : gkd::test::kConvApis) {
    const gkd::test::UseConvApi use(api);
    for (const auto& c : cases) {
      const std::string name = c.name + ", " + gkd::test::UseConvApi::name(api);
      const auto x = random<float>(c.x, 81);
      const auto w = random<float>(c.w, 82, 0.3f);
      const auto b = random<float>({c.w[0]}, 83);
      require_gpu_matches_cpu<float>(
          [&c](const auto& in) { return gkd::conv2d(in[0], in[1], in[2], c.stride, c.padding, c.dilation, c.groups); },
          {x, w, b}, 1e-4, 1e-4, "float32 " + name);
      require_gpu_matches_cpu<double>(
          [&c](const auto& in) {
            return gkd::conv2d(in[0], in[1], Tensor<double>(), c.stride, c.padding, c.dilation, c.groups);
          },
          {random<double>(c.x, 84), random<double>(c.w, 85)}, 1e-10, 1e-10, "float64 " + name);
    }
  }
}

namespace {
/// Runs conv2d forward and backward (input and weight gradients: three directions) on the GPU and
/// returns how they ran.
template <gkd::Real T>
gkd::cuda::ConvCounters count_directions(const Tensor<T>& x, const Tensor<T>& w) {
  gkd::cuda::reset_conv_counters();
  auto xg = x.cuda().requires_grad(), wg = w.cuda().requires_grad();
  gkd::sum(gkd::conv2d(xg, wg, Tensor<T>(), 1, 1)).backward();
  return gkd::cuda::conv_counters();
}
}  // namespace

TEST_CASE("each cuDNN interface really serves the directions it is chosen for", "[cuda][conv]") {
  const auto x = random<float>({2, 8, 16, 16}, 90), w = random<float>({8, 8, 3, 3}, 91);
  {
    const gkd::test::UseConvApi use(gkd::cuda::ConvApi::Legacy);
    const auto c = count_directions(x, w);
    CHECK(c.legacy_runs == 3);
    CHECK(c.graph_runs + c.graph_to_legacy == 0);
  }
  {  // Auto: each direction through one interface, its timed trial runs not counted
    const gkd::test::UseConvApi use(gkd::cuda::ConvApi::Auto);
    for (int pass = 0; pass < 2; ++pass) {  // choosing, then chosen
      const auto c = count_directions(x, w);
      INFO("pass " << pass << ": graph " << c.graph_runs << ", legacy " << c.legacy_runs);
      CHECK(c.graph_runs + c.legacy_runs == 3);
      CHECK(c.graph_to_legacy == 0);
    }
  }
  // float32 3x3 convolutions have graph-API engines in every cuDNN 9. Whether float64 and the 16-bit
  // weight gradient have one that passes our numerical filter depends on the cuDNN release: those
  // directions may fall back to the legacy API, counted and reported, never silently.
  const gkd::test::UseConvApi use(gkd::cuda::ConvApi::Graph);
  const auto f32 = count_directions(x, w);
  CHECK(f32.graph_runs == 3);
  CHECK(f32.legacy_runs == 0);
  const auto f64 = count_directions(random<double>({2, 8, 16, 16}, 92), random<double>({8, 8, 3, 3}, 93));
  CHECK(f64.graph_runs + f64.graph_to_legacy == 3);
  CHECK(f64.legacy_runs == f64.graph_to_legacy);
  if (f64.graph_to_legacy > 0) WARN("float64: " << f64.graph_to_legacy << " of 3 directions fell back to the legacy API");
  for (const gkd::Precision p : {gkd::Precision::bf16, gkd::Precision::f16}) {
    gkd::Autocast scope(p);
    const auto c = count_directions(x, w);
    INFO(gkd::to_string(p) << ": graph " << c.graph_runs << ", legacy " << c.legacy_runs << ", without a 16-bit "
                           << "algorithm " << c.no_16bit_algorithm);
    CHECK(c.graph_runs + c.graph_to_legacy == 3);
    CHECK(c.runs_16bit == 3);
    if (c.graph_to_legacy > 0)
      WARN(gkd::to_string(p) << ": " << c.graph_to_legacy << " of 3 directions fell back to the legacy API");
  }
  {  // with a bias: the forward in float32 (the bias added before the one rounding), the gradients in 16 bits
    gkd::Autocast scope(gkd::Precision::bf16);
    gkd::cuda::reset_conv_counters();
    auto xg = x.cuda().requires_grad(), wg = w.cuda().requires_grad();
    auto bg = random<float>({8}, 89).cuda().requires_grad();
    gkd::sum(gkd::conv2d(xg, wg, bg, 1, 1)).backward();
    const auto c = gkd::cuda::conv_counters();
    CHECK(c.graph_runs + c.legacy_runs == 3);
    CHECK(c.runs_16bit + c.no_16bit_algorithm == 2);
  }
  // A 4-byte aligned input (a batch slice at an odd float offset) gets a plan of its own.
  const auto big = random<float>({3, 3, 9, 11}, 94);
  gkd::cuda::reset_conv_counters();
  auto big_gpu = big.cuda().requires_grad(), w_gpu = random<float>({4, 3, 3, 3}, 95).cuda().requires_grad();
  gkd::sum(gkd::conv2d(big_gpu.narrow(0, 1, 2), w_gpu, Tensor<float>(), 1, 1)).backward();
  const auto c = gkd::cuda::conv_counters();
  INFO("4-byte aligned: graph " << c.graph_runs << ", fell back " << c.graph_to_legacy);
  CHECK(c.graph_runs + c.graph_to_legacy == 3);
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::conv2d(in[0].narrow(0, 1, 2), in[1], in[2], 1, 1); },
                                 {big, random<float>({4, 3, 3, 3}, 96), random<float>({4}, 97)}, 1e-4, 1e-4,
                                 "4-byte aligned input, graph API");
  // The legacy API's algorithm cache also keys on alignment: the same geometry on aligned buffers
  // first, then on the 4-byte aligned slice.
  const gkd::test::UseConvApi legacy(gkd::cuda::ConvApi::Legacy);
  for (const bool aligned : {true, false})
    require_gpu_matches_cpu<float>(
        [aligned](const auto& in) {
          return gkd::conv2d(in[0].narrow(0, aligned ? 0 : 1, 2), in[1], in[2], 1, 1);
        },
        {big, random<float>({4, 3, 3, 3}, 98), random<float>({4}, 99)}, 1e-4, 1e-4,
        aligned ? "aligned input, legacy API" : "4-byte aligned input, legacy API");
}

TEST_CASE("GKD_CUDNN_API and set_conv_api choose the cuDNN interface", "[cuda][conv]") {
  const gkd::test::UseConvApi use(gkd::cuda::ConvApi::Graph);
  REQUIRE(gkd::cuda::conv_api() == gkd::cuda::ConvApi::Graph);
  gkd::cuda::set_conv_api(gkd::cuda::ConvApi::Legacy);
  REQUIRE(gkd::cuda::conv_api() == gkd::cuda::ConvApi::Legacy);
  gkd::cuda::set_conv_api(gkd::cuda::ConvApi::Auto);
  REQUIRE(gkd::cuda::conv_api() == gkd::cuda::ConvApi::Auto);
}

TEST_CASE("conv2d on the GPU rejects bad shapes like the CPU", "[cuda][conv]") {
  const auto x = random<float>({1, 3, 5, 5}, 86).cuda();
  REQUIRE_THROWS_WITH(gkd::conv2d(x, random<float>({2, 4, 3, 3}, 87).cuda()), Catch::Contains("do not match"));
  REQUIRE_THROWS_WITH(gkd::conv2d(x, random<float>({2, 3, 7, 7}, 88).cuda()), Catch::Contains("larger"));
  REQUIRE_THROWS(gkd::conv2d(x, random<float>({2, 3, 3, 3}, 89)));  // weight on the host
}

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
    // The GPU multiplies 16-bit operands on tensor cores (with a bias, in the two gradients only: the
    // forward adds the bias before the one rounding, as above); through every cuDNN interface, grouped
    // and depthwise too, with and without a bias.
    for (const auto api : gkd::test::kConvApis) {
      const gkd::test::UseConvApi use(api);
      const std::string where = tag + ", " + gkd::test::UseConvApi::name(api);
      require_gpu_matches_cpu<float>(under([](const auto& in) { return gkd::conv2d(in[0], in[1], {}, 1, 1); }),
                                     {x, w}, tol, tol, "conv2d without bias " + where);
      require_gpu_matches_cpu<float>(under([](const auto& in) { return gkd::conv2d(in[0], in[1], in[2], 1, 1); }),
                                     {x, w, b}, tol, tol, "conv2d with bias " + where);
      require_gpu_matches_cpu<float>(
          under([](const auto& in) { return gkd::conv2d(in[0], in[1], {}, 2, 1, 1, 3); }),
          {random<float>({2, 6, 16, 12}, 10), random<float>({6, 2, 3, 3}, 11)}, tol, tol, "grouped conv2d " + where);
      require_gpu_matches_cpu<float>(
          under([](const auto& in) { return gkd::conv2d(in[0], in[1], {}, 1, 1, 1, 8); }),
          {random<float>({4, 8, 20, 20}, 12), random<float>({8, 1, 3, 3}, 13)}, tol, tol,
          "depthwise conv2d " + where);
    }
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
