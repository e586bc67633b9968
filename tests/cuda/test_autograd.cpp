// SPDX-License-Identifier: Apache-2.0
// The autograd engine with device tensors: implicit seed gradient, accumulation into leaves and
// into shared inputs, broadcasting gradients (sum_to), views' backward, zero_grad.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;

TEST_CASE("a one-element device output seeds its own gradient", "[cuda][autograd]") {
  auto x = Tensor<float>::from({1}, {3.f}).cuda().requires_grad();
  auto y = gkd::mul(x, x);
  y.backward();
  REQUIRE(x.grad().device().is_cuda());
  REQUIRE(x.grad().item() == 6.f);
}

TEST_CASE("gradients accumulate on the device across uses and backward calls", "[cuda][autograd]") {
  const auto x0 = gkd::test::random<double>({4, 5}, 5);
  auto x = x0.cuda().requires_grad();
  auto c = x0.detach().clone().requires_grad();
  for (int pass = 0; pass < 2; ++pass) {
    gkd::sum(gkd::add(gkd::mul(x, x), x)).backward();
    gkd::sum(gkd::add(gkd::mul(c, c), c)).backward();
  }
  gkd::test::require_close(x.grad(), c.grad(), 1e-12, "accumulated gradient");
  x.zero_grad();
  REQUIRE_FALSE(x.grad().defined());
}

TEST_CASE("broadcast, view and reduction gradients match the CPU", "[cuda][autograd]") {
  using gkd::test::require_gpu_matches_cpu;
  const auto a = gkd::test::random<double>({2, 3, 4}, 6);
  const auto b = gkd::test::random<double>({3, 1}, 7);
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::mul(in[0], in[1]); }, {a, b}, 1e-12, 1e-12,
                                  "broadcast mul");
  require_gpu_matches_cpu<double>([](const auto& in) { return in[0].expand({2, 3, 4}); }, {b}, 1e-12, 1e-12,
                                  "expand");
  require_gpu_matches_cpu<double>([](const auto& in) { return in[0].permute({2, 0, 1}).slice(1, 0, 2).reshape({-1}); },
                                  {a}, 1e-12, 1e-12, "permute/slice/reshape");
  require_gpu_matches_cpu<double>([](const auto& in) { return in[0].select(1, 2).unsqueeze(0).squeeze(0); }, {a},
                                  1e-12, 1e-12, "select/unsqueeze/squeeze");
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::sum(in[0], {0, 2}, true); }, {a}, 1e-12, 1e-12,
                                  "sum over dims");
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::mean(in[0], {1}); }, {a}, 1e-12, 1e-12,
                                  "mean over a dim");
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::mean(in[0]); }, {a}, 1e-12, 1e-12, "mean");
  // The transpose's gradient is a strided view added into the slot add's other gradient made: the
  // strided accumulate without atomics, over distinct destinations.
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::add(in[0], in[0].transpose(0, 1)); },
                                  {gkd::test::random<double>({37, 37}, 9)}, 1e-12, 1e-12, "x + xᵀ");
}

TEST_CASE("a strided gradient set by hand is summed out of place on the device", "[cuda][autograd]") {
  auto x = gkd::test::random<float>({3, 3}, 10).cuda().requires_grad();
  const auto base = gkd::test::random<float>({3, 3}, 11);
  x.set_grad(base.cuda().transpose(0, 1));
  gkd::sum(x).backward();
  const auto expected = gkd::add(base.transpose(0, 1), Tensor<float>::ones({3, 3}));
  gkd::test::require_close(x.grad(), expected, 0, "x.grad");
}

TEST_CASE("an output gradient on the wrong device is refused", "[cuda][autograd]") {
  auto x = gkd::test::random<float>({3}, 8).cuda().requires_grad();
  auto y = gkd::relu(x);
  REQUIRE_THROWS_WITH(y.backward(Tensor<float>::ones({3})), Catch::Contains("output gradient is on cpu"));
}
