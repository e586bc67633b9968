// SPDX-License-Identifier: Apache-2.0
// max_pool2d and avg_pool2d (cuDNN) and adaptive_avg_pool2d (our kernels) against the CPU
// implementation: forward and input gradient, float32 and float64, 3-D and 4-D inputs, padding,
// count_include_pad both ways, ceil_mode with and without an extra window and dilated max pooling
// (the last two on our kernels); NaN propagation; errors. nn::max_pool2d_indices and nn::max_unpool2d
// (ENet's pairing, our kernels): positions equal to the CPU's (ties and NaN included), unpooling and its
// gradient exact.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "compare.hpp"
#include "gkd/nn/max_unpool.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

namespace {
struct Case {
  std::string name;
  gkd::Shape x;
  gkd::Size2 kernel, stride, padding;
  bool ceil_mode;
  gkd::Size2 dilation = 1;  // max pooling only
};

const std::vector<Case>& pool_cases() {
  static const std::vector<Case> cases = {
      {"2x2 stride 2", {2, 3, 8, 6}, 2, 2, 0, false},
      {"3x3 stride 2 padding 1 (ENet)", {2, 4, 9, 10}, 3, 2, 1, false},
      {"3x3 stride 1 padding 1", {1, 2, 5, 7}, 3, 1, 1, false},
      {"asymmetric", {2, 2, 7, 9}, {2, 3}, {1, 2}, {1, 1}, false},
      {"odd input, floor", {1, 3, 7, 5}, 2, 2, 0, false},
      {"ceil_mode without an extra window", {2, 2, 8, 8}, 2, 2, 0, true},
      {"3-D input", {3, 6, 6}, 2, 2, 0, false},
      // ceil_mode adding a window: our kernels, not cuDNN
      {"ceil_mode with an extra window", {2, 3, 7, 9}, 2, 2, 0, true},
      {"ceil_mode, 3x3 stride 2 padding 1", {1, 2, 8, 6}, 3, 2, 1, true},
      {"ceil_mode, asymmetric", {2, 2, 6, 7}, {3, 2}, {2, 3}, {1, 0}, true},
  };
  return cases;
}

const std::vector<Case>& dilated_cases() {  // max pooling with dilation: our kernels
  static const std::vector<Case> cases = {
      {"dilation 2", {2, 3, 9, 8}, 3, 1, 0, false, 2},
      {"dilation (2, 3), stride 2, padding 1", {1, 2, 11, 12}, 3, 2, 1, false, {2, 3}},
      {"dilation 2, ceil_mode", {2, 2, 8, 9}, 2, 2, 1, true, 2},
  };
  return cases;
}
}  // namespace

TEST_CASE("max_pool2d matches the CPU forward and backward", "[cuda][pool]") {
  std::vector<Case> cases = pool_cases();
  cases.insert(cases.end(), dilated_cases().begin(), dilated_cases().end());
  for (const auto& c : cases) {
    auto f = [&c](const auto& in) {
      return gkd::max_pool2d(in[0], c.kernel, c.stride, c.padding, c.dilation, c.ceil_mode);
    };
    require_gpu_matches_cpu<float>(f, {random<float>(c.x, 111)}, 1e-6, 1e-5, "float32 " + c.name);
    require_gpu_matches_cpu<double>(f, {random<double>(c.x, 112)}, 1e-12, 1e-12, "float64 " + c.name);
  }
}

TEST_CASE("avg_pool2d matches the CPU forward and backward", "[cuda][pool]") {
  for (const bool include_pad : {true, false}) {
    for (const auto& c : pool_cases()) {
      auto f = [&c, include_pad](const auto& in) {
        return gkd::avg_pool2d(in[0], c.kernel, c.stride, c.padding, c.ceil_mode, include_pad);
      };
      const std::string name = c.name + (include_pad ? " counting padding" : " not counting padding");
      require_gpu_matches_cpu<float>(f, {random<float>(c.x, 113)}, 5e-5, 5e-5, "float32 " + name);
      require_gpu_matches_cpu<double>(f, {random<double>(c.x, 114)}, 1e-12, 1e-12, "float64 " + name);
    }
  }
}

TEST_CASE("adaptive_avg_pool2d matches the CPU forward and backward", "[cuda][pool]") {
  struct Adaptive {
    std::string name;
    gkd::Shape x;
    gkd::Size2 out;
  };
  const std::vector<Adaptive> cases = {
      {"global", {2, 5, 7, 6}, 1},
      {"divisible", {2, 3, 8, 12}, {4, 3}},
      {"overlapping windows", {1, 4, 7, 11}, {3, 5}},
      {"larger than the input", {2, 2, 5, 3}, {9, 4}},
      {"3-D input", {3, 10, 9}, {4, 4}},
  };
  for (const auto& c : cases) {
    auto f = [&c](const auto& in) { return gkd::adaptive_avg_pool2d(in[0], c.out); };
    require_gpu_matches_cpu<float>(f, {random<float>(c.x, 115)}, 1e-5, 1e-5, "float32 " + c.name);
    require_gpu_matches_cpu<double>(f, {random<double>(c.x, 116)}, 1e-12, 1e-12, "float64 " + c.name);
  }
}

TEST_CASE("max_pool2d on our kernels past the first grid-stride pass matches the CPU", "[cuda][pool]") {
  // Dilation sends max pooling to our kernels (pool_kernels.cu: one thread per output forward, per input
  // backward), whose launches kernels/launch.hpp caps at 132 * 32 blocks of 256 threads. Kernel 2,
  // stride 1, dilation 2 on [2, 3, 482, 402] has [2, 3, 480, 400] outputs, more than that cap (and more
  // inputs): the first threads take a second element. Tolerances of the cases above: the forward selects
  // elements, the backward sums the same dy in the same (increasing window) order as the CPU.
  constexpr std::int64_t kGridThreads = 132 * 32 * 256;  // 1,081,344
  static_assert(std::int64_t{2} * 3 * 480 * 400 > kGridThreads);
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::max_pool2d(in[0], 2, 1, 0, 2); },
                                 {random<float>({2, 3, 482, 402}, 128)}, 1e-6, 1e-5,
                                 "dilated max pooling, 1,152,000 outputs");
}

TEST_CASE("max_pool2d on the GPU propagates NaN like the CPU", "[cuda][pool]") {
  auto x = random<float>({1, 1, 4, 4}, 117);
  x.data()[5] = std::numeric_limits<float>::quiet_NaN();  // inside the top-left 2x2 window
  const auto cpu = gkd::max_pool2d(x, 2).to_vector();
  const auto gpu = gkd::max_pool2d(x.cuda(), 2).cpu().to_vector();
  REQUIRE(gpu.size() == cpu.size());
  REQUIRE(std::isnan(cpu[0]));
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    INFO("output " << i);
    REQUIRE(std::isnan(gpu[i]) == std::isnan(cpu[i]));
    if (!std::isnan(cpu[i])) REQUIRE(gpu[i] == cpu[i]);
  }
}

TEST_CASE("max_pool2d on our kernels without a gradient, and NaN there", "[cuda][pool]") {
  auto x = random<float>({1, 2, 6, 6}, 120);
  x.data()[14] = std::numeric_limits<float>::quiet_NaN();  // row 2, column 2: in the first dilated window
  const auto cpu = gkd::max_pool2d(x, 2, 2, 0, 2).to_vector();  // dilation 2
  const auto gpu = gkd::max_pool2d(x.cuda(), 2, 2, 0, 2).cpu().to_vector();
  REQUIRE(gpu.size() == cpu.size());
  REQUIRE(std::isnan(cpu[0]));
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    INFO("output " << i);
    REQUIRE(std::isnan(gpu[i]) == std::isnan(cpu[i]));
    if (!std::isnan(cpu[i])) REQUIRE(gpu[i] == cpu[i]);
  }
}

TEST_CASE("pooling on the GPU rejects bad input like the CPU", "[cuda][pool]") {
  const auto xg = random<float>({1, 2, 7, 7}, 118).cuda();
  REQUIRE_THROWS_WITH(gkd::max_pool2d(xg, 3, 1, 2), Catch::Contains("padding"));
  REQUIRE_THROWS_WITH(gkd::max_pool2d(xg, 3, 1, 0, 4), Catch::Contains("too small"));
  REQUIRE_THROWS_WITH(gkd::max_pool2d(xg, 3, 1, 0, 0), Catch::Contains("dilation"));
  REQUIRE_THROWS_WITH(gkd::avg_pool2d(xg, 9, 1), Catch::Contains("too small"));
  REQUIRE_THROWS_WITH(gkd::avg_pool2d(xg, 2, 0), Catch::Contains("stride"));
  REQUIRE_THROWS_WITH(gkd::adaptive_avg_pool2d(xg, 0), Catch::Contains("positive"));
  REQUIRE_THROWS(gkd::max_pool2d(random<float>({7, 7}, 119).cuda(), 2));
}

namespace {

/// Values rounded to halves: many equal maxima per window, to check the tie rule.
template <gkd::Real T>
Tensor<T> with_ties(const gkd::Shape& shape, std::uint64_t seed) {
  auto x = random<T>(shape, seed);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::round(x.data()[i] * T(2)) / T(2);
  return x;
}

template <gkd::Real T>
void check_indices_and_unpool() {
  struct Indexed {
    std::string name;
    gkd::Shape x;
    gkd::Size2 kernel;
  };
  const std::vector<Indexed> cases = {
      {"2x2 (ENet)", {2, 3, 8, 6}, 2},
      {"odd input, floor", {1, 2, 7, 9}, 2},
      {"asymmetric kernel", {2, 2, 6, 9}, {2, 3}},
      {"kernel of the whole plane", {1, 3, 4, 5}, {4, 5}},
  };
  const std::string type = std::is_same_v<T, float> ? "float32 " : "float64 ";
  for (const auto& c : cases) {
    INFO(type << c.name);
    for (const auto& x : {random<T>(c.x, 121), with_ties<T>(c.x, 122)}) {
      const auto cpu = gkd::nn::max_pool2d_indices(x, c.kernel);
      const auto gpu = gkd::nn::max_pool2d_indices(x.cuda(), c.kernel);
      REQUIRE(gpu.device.is_cuda());
      REQUIRE(gpu.input_shape == cpu.input_shape);
      REQUIRE(gpu.pooled_shape == cpu.pooled_shape);
      REQUIRE(gpu.positions() == cpu.positions());
      // unpooling any values by those positions, and its gradient (exact: both only move elements)
      require_gpu_matches_cpu<T>(
          [&c](const auto& in) { return gkd::nn::max_unpool2d(in[0], gkd::nn::max_pool2d_indices(in[1], c.kernel)); },
          {random<T>(cpu.pooled_shape, 123), x}, 0.0, 0.0, type + c.name + " max_unpool2d", {1});
    }
    // ENet's pairing: pool, then unpool to the maxima's places (distinct values: one maximum per window)
    require_gpu_matches_cpu<T>(
        [&c](const auto& in) {
          return gkd::nn::max_unpool2d(gkd::max_pool2d(in[0], c.kernel), gkd::nn::max_pool2d_indices(in[0], c.kernel));
        },
        {random<T>(c.x, 124)}, 0.0, 0.0, type + c.name + " pool then unpool");
  }
  // a non-contiguous input
  const auto x = random<T>({2, 2, 6, 8}, 125);
  REQUIRE(gkd::nn::max_pool2d_indices(x.cuda().transpose(2, 3), 2).positions() ==
          gkd::nn::max_pool2d_indices(x.transpose(2, 3), 2).positions());
}

}  // namespace

TEST_CASE("max_pool2d_indices and max_unpool2d match the CPU forward and backward", "[cuda][pool]") {
  check_indices_and_unpool<float>();
  check_indices_and_unpool<double>();
}

namespace {

/// Whether kernels/ops/pool.cpp runs max pooling case `c` on cuDNN (cudnn_expressible): no dilation, and
/// the floor-mode output size.
bool runs_on_cudnn(const Case& c) {
  const std::int64_t in_h = c.x[c.x.size() - 2], in_w = c.x.back();
  auto same_as_floor = [&c](std::int64_t in, std::int64_t k, std::int64_t pad, std::int64_t stride) {
    return gkd::detail::pool_output_size(in, k, pad, stride, 1, c.ceil_mode) ==
           gkd::detail::pool_output_size(in, k, pad, stride, 1, false);
  };
  return c.dilation.h == 1 && c.dilation.w == 1 && same_as_floor(in_h, c.kernel.h, c.padding.h, c.stride.h) &&
         same_as_floor(in_w, c.kernel.w, c.padding.w, c.stride.w);
}

/// cuDNN max pooling (CUDNN_POOLING_MAX_DETERMINISTIC) backward on inputs with tied maxima. The CPU gives
/// each window's gradient to its first maximal element (row-major); cuDNN documents neither which tied
/// element it picks nor that it picks only one, so the gradients are NOT compared with the CPU's here.
/// Asserted instead is what every valid max-pooling gradient satisfies (each window's dy spread over its
/// maximal elements, weights summing to 1):
/// - the forward equals the CPU's exactly (the maximum is the same value whichever element holds it);
/// - the gradient is zero on every element that is not maximal in some window holding it;
/// - per plane Σ dx = Σ dy and, where windows do not overlap, per window Σ_window dx = dy.
/// Sums are formed in long double (exact enough for ≤ 240 values of T). Tolerance: spreading dy over at
/// most kh·kw tied elements and summing at most kh·kw windows' shares into one element each round by at
/// most eps/2 relative, so |Σ dx − Σ dy| ≤ kh·kw·eps·Σ|dy| (to first order); a gradient sent to several
/// maxima whole, or lost, misses by about |dy|.
template <gkd::Real T>
void check_cudnn_max_pool_ties(const Case& c, std::uint64_t seed) {
  INFO((std::is_same_v<T, float> ? "float32 " : "float64 ") << c.name);
  REQUIRE(runs_on_cudnn(c));
  const auto x = with_ties<T>(c.x, seed);
  auto pool = [&c](const Tensor<T>& in) {
    return gkd::max_pool2d(in, c.kernel, c.stride, c.padding, c.dilation, c.ceil_mode);
  };
  const auto y = pool(x);
  const auto xg = x.cuda().requires_grad();
  const auto yg = pool(xg);
  REQUIRE(yg.device().is_cuda());
  gkd::test::require_close(yg, y, 0.0, "forward on tied inputs");
  const auto dy = random<T>(y.shape(), seed + 1);
  yg.backward(dy.cuda());
  REQUIRE(xg.grad().defined());
  REQUIRE(xg.grad().shape() == x.shape());
  const auto xv = x.to_vector(), yv = y.to_vector(), dyv = dy.to_vector(), dxv = xg.grad().cpu().to_vector();
  const std::size_t rank = c.x.size();
  const std::int64_t in_h = c.x[rank - 2], in_w = c.x[rank - 1];
  const std::int64_t out_h = y.shape()[rank - 2], out_w = y.shape()[rank - 1];
  const std::int64_t planes = x.numel() / (in_h * in_w);
  const bool overlapping = c.stride.h < c.kernel.h || c.stride.w < c.kernel.w;
  const long double slack = static_cast<long double>(std::numeric_limits<T>::epsilon()) * c.kernel.h * c.kernel.w;
  std::vector<char> maximal(xv.size(), 0);  // maximal in some window that holds it
  std::int64_t tied_windows = 0, empty_windows = 0, bad_windows = 0, bad_planes = 0;
  for (std::int64_t p = 0; p < planes; ++p) {
    long double sum_dy = 0, sum_abs_dy = 0, sum_dx = 0;
    for (std::int64_t oh = 0; oh < out_h; ++oh) {
      const std::int64_t h0 = std::max<std::int64_t>(oh * c.stride.h - c.padding.h, 0);
      const std::int64_t h1 = std::min(oh * c.stride.h - c.padding.h + c.kernel.h, in_h);
      for (std::int64_t ow = 0; ow < out_w; ++ow) {
        const std::int64_t w0 = std::max<std::int64_t>(ow * c.stride.w - c.padding.w, 0);
        const std::int64_t w1 = std::min(ow * c.stride.w - c.padding.w + c.kernel.w, in_w);
        const auto o = static_cast<std::size_t>((p * out_h + oh) * out_w + ow);
        std::int64_t maxima = 0;
        long double window_dx = 0;
        for (std::int64_t ih = h0; ih < h1; ++ih)
          for (std::int64_t iw = w0; iw < w1; ++iw) {
            const auto i = static_cast<std::size_t>((p * in_h + ih) * in_w + iw);
            if (xv[i] == yv[o]) {
              maximal[i] = 1;
              ++maxima;
            }
            window_dx += dxv[i];
          }
        empty_windows += maxima == 0;  // the window geometry above disagrees with the op
        tied_windows += maxima > 1;
        const long double dyo = dyv[o];
        if (!overlapping && std::abs(window_dx - dyo) > slack * std::abs(dyo)) ++bad_windows;
        sum_dy += dyo;
        sum_abs_dy += std::abs(dyo);
      }
    }
    for (std::int64_t i = p * in_h * in_w; i < (p + 1) * in_h * in_w; ++i) sum_dx += dxv[static_cast<std::size_t>(i)];
    if (std::abs(sum_dx - sum_dy) > slack * sum_abs_dy) ++bad_planes;
  }
  std::int64_t stray = 0;
  for (std::size_t i = 0; i < dxv.size(); ++i) stray += dxv[i] != T(0) && !maximal[i];
  REQUIRE(empty_windows == 0);
  REQUIRE(tied_windows > 0);  // the input exercises the tie rule
  REQUIRE(stray == 0);        // gradient only on maximal elements
  REQUIRE(bad_planes == 0);   // Σ dx = Σ dy per plane
  REQUIRE(bad_windows == 0);  // Σ_window dx = dy per window (non-overlapping windows)
}

}  // namespace

TEST_CASE("cuDNN max_pool2d backward on tied maxima conserves the gradient on maximal elements", "[cuda][pool]") {
  int on_cudnn = 0;
  for (const auto& c : pool_cases()) {
    if (!runs_on_cudnn(c)) continue;  // ceil_mode's extra windows: our kernels, compared with the CPU above
    ++on_cudnn;
    check_cudnn_max_pool_ties<float>(c, 131);
    check_cudnn_max_pool_ties<double>(c, 133);
  }
  REQUIRE(on_cudnn == 7);
}

TEST_CASE("max_pool2d_indices on the GPU follows the CPU's NaN rule", "[cuda][pool]") {
  auto x = random<float>({1, 2, 4, 4}, 126);
  x.data()[5] = std::numeric_limits<float>::quiet_NaN();   // top-left window of plane 0
  x.data()[4] = std::numeric_limits<float>::quiet_NaN();   // the same window, earlier: the first NaN wins
  x.data()[16 + 15] = std::numeric_limits<float>::quiet_NaN();  // bottom-right window of plane 1
  const auto cpu = gkd::nn::max_pool2d_indices(x, 2).positions();
  REQUIRE(cpu[0] == 4);
  REQUIRE(gkd::nn::max_pool2d_indices(x.cuda(), 2).positions() == cpu);
}

TEST_CASE("max_unpool2d on the GPU rejects indices from another device", "[cuda][pool]") {
  const auto x = random<float>({1, 2, 4, 4}, 127);
  const auto host = gkd::nn::max_pool2d_indices(x, 2);
  const auto device = gkd::nn::max_pool2d_indices(x.cuda(), 2);
  REQUIRE_THROWS_WITH(gkd::nn::max_unpool2d(gkd::max_pool2d(x, 2).cuda(), host), Catch::Contains("device"));
  REQUIRE_THROWS_WITH(gkd::nn::max_unpool2d(gkd::max_pool2d(x, 2), device), Catch::Contains("device"));
  REQUIRE_THROWS_WITH(gkd::nn::max_unpool2d(Tensor<float>::zeros({1, 2, 3, 2}).cuda(), device),
                      Catch::Contains("does not match the pooled shape"));
  REQUIRE_THROWS_WITH(gkd::nn::max_pool2d_indices(x.cuda(), 5), Catch::Contains("does not fit"));
}
