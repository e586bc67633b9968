// SPDX-License-Identifier: Apache-2.0
#include "gkd/ops/pool.hpp"

#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("pooling gradcheck", "[gradcheck][pool]") {
  const auto x = random({2, 2, 7, 6}, 1);
  SECTION("max_pool2d") {
    require_gradcheck([](const In& v) { return max_pool2d(v[0], 2); }, {x});
    require_gradcheck([](const In& v) { return max_pool2d(v[0], 3, 2, 1, 1, true); }, {x});
    require_gradcheck([](const In& v) { return max_pool2d(v[0], {3, 2}, {1, 2}, {1, 0}, {2, 1}); }, {x});
    require_gradcheck([](const In& v) { return max_pool2d(v[0], 2, 2, 0, 1, true); }, {random({3, 5, 5}, 2)});
  }
  SECTION("avg_pool2d") {
    require_gradcheck([](const In& v) { return avg_pool2d(v[0], 2); }, {x});
    require_gradcheck([](const In& v) { return avg_pool2d(v[0], 3, 2, 1, true); }, {x});
    require_gradcheck([](const In& v) { return avg_pool2d(v[0], 3, 2, 1, true, false); }, {x});
    require_gradcheck([](const In& v) { return avg_pool2d(v[0], {2, 3}, {1, 2}, {1, 1}, false, false); }, {x});
  }
  SECTION("adaptive_avg_pool2d") {
    require_gradcheck([](const In& v) { return adaptive_avg_pool2d(v[0], {3, 4}); }, {x});
    require_gradcheck([](const In& v) { return adaptive_avg_pool2d(v[0], {9, 5}); }, {x});
    require_gradcheck([](const In& v) { return adaptive_avg_pool2d(v[0], 1); }, {random({3, 4, 5}, 3)});
  }
}

TEMPLATE_TEST_CASE("pooling matches PyTorch", "[golden][pool]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("pool");
  gkd::test::check_golden_case<T>(g, "max_k2", [](const V& v) { return max_pool2d(v[0], 2); });
  gkd::test::check_golden_case<T>(g, "max_k3_s2_p1_ceil", [](const V& v) { return max_pool2d(v[0], 3, 2, 1, 1, true); });
  gkd::test::check_golden_case<T>(g, "max_dilated",
                                  [](const V& v) { return max_pool2d(v[0], {3, 2}, {2, 1}, {1, 0}, {2, 1}); });
  gkd::test::check_golden_case<T>(g, "max_3d_ceil", [](const V& v) { return max_pool2d(v[0], 2, 2, 0, 1, true); });
  gkd::test::check_golden_case<T>(g, "avg_k2", [](const V& v) { return avg_pool2d(v[0], 2); });
  gkd::test::check_golden_case<T>(g, "avg_k3_s2_p1_ceil", [](const V& v) { return avg_pool2d(v[0], 3, 2, 1, true); });
  gkd::test::check_golden_case<T>(g, "avg_k3_s2_p1_ceil_nopad",
                                  [](const V& v) { return avg_pool2d(v[0], 3, 2, 1, true, false); });
  gkd::test::check_golden_case<T>(g, "avg_rect", [](const V& v) { return avg_pool2d(v[0], {3, 2}, {1, 2}, {1, 1}); });
  gkd::test::check_golden_case<T>(g, "avg_3d_nopad", [](const V& v) { return avg_pool2d(v[0], 2, 1, 1, false, false); });
  gkd::test::check_golden_case<T>(g, "adaptive_down", [](const V& v) { return adaptive_avg_pool2d(v[0], {3, 2}); });
  gkd::test::check_golden_case<T>(g, "adaptive_up", [](const V& v) { return adaptive_avg_pool2d(v[0], {5, 7}); });
  gkd::test::check_golden_case<T>(g, "adaptive_global", [](const V& v) { return adaptive_avg_pool2d(v[0], 1); });
}

TEST_CASE("max_pool2d propagates NaN, routes ties to the first maximum and handles large batches", "[pool]") {
  auto x = Tensor<double>::from({1, 1, 2, 4}, {1, 3, 3, 2, std::nan(""), 0, 5, 5}).requires_grad();
  auto y = max_pool2d(x, 2);
  REQUIRE(std::isnan(y.at({0, 0, 0, 0})));
  REQUIRE(y.at({0, 0, 0, 1}) == 5);
  y.backward(Tensor<double>::ones({1, 1, 1, 2}));
  REQUIRE(x.grad().to_vector() == std::vector<double>{0, 0, 0, 0, 1, 0, 1, 0});

  // Parallel path over many planes, non-contiguous input: compare with a per-plane loop.
  const auto big = random({4, 8, 17, 20}, 5).transpose(2, 3);
  const auto pooled = max_pool2d(big, 3, 2, 1);
  const auto avg = avg_pool2d(big, 3, 2, 1, false, false);
  for (std::int64_t n = 0; n < 4; n += 3)
    for (std::int64_t c = 0; c < 8; c += 5) {
      const auto plane = big.narrow(0, n, 1).narrow(1, c, 1);
      test::require_close(max_pool2d(plane, 3, 2, 1), pooled.narrow(0, n, 1).narrow(1, c, 1), 0.0);
      test::require_close(avg_pool2d(plane, 3, 2, 1, false, false), avg.narrow(0, n, 1).narrow(1, c, 1), 0.0);
    }
}

TEST_CASE("pooling bad input raises gkd::Error naming op and shapes", "[errors][pool]") {
  using F = Tensor<float>;
  using Catch::Contains;
  const auto x = F::zeros({2, 3, 5, 5});
  REQUIRE_THROWS_WITH(max_pool2d(F::zeros({5, 5}), 2), Contains("max_pool2d") && Contains("[5, 5]"));
  REQUIRE_THROWS_WITH(max_pool2d(x, 0), Contains("max_pool2d") && Contains("kernel") && Contains("[2, 3, 5, 5]"));
  REQUIRE_THROWS_WITH(max_pool2d(x, 2, {0, 1}), Contains("max_pool2d") && Contains("stride") && Contains("[2, 3, 5, 5]"));
  REQUIRE_THROWS_WITH(max_pool2d(x, 2, 2, 0, 0), Contains("max_pool2d") && Contains("dilation"));
  REQUIRE_THROWS_WITH(max_pool2d(x, 2, 2, 2), Contains("max_pool2d") && Contains("half of kernel"));
  REQUIRE_THROWS_WITH(max_pool2d(x, 6), Contains("max_pool2d") && Contains("too small") && Contains("[2, 3, 5, 5]"));
  REQUIRE_THROWS_WITH(max_pool2d(x, 3, 1, 1, 4), Contains("max_pool2d") && Contains("too small"));
  REQUIRE_THROWS_WITH(max_pool2d(F(), 2), Contains("max_pool2d") && Contains("undefined"));
  REQUIRE_THROWS_WITH(avg_pool2d(F::zeros({1, 2, 3, 4, 5}), 2), Contains("avg_pool2d") && Contains("[1, 2, 3, 4, 5]"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, 2, -1), Contains("avg_pool2d") && Contains("stride"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, {2, 7}), Contains("avg_pool2d") && Contains("too small") && Contains("[2, 3, 5, 5]"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, 2, 1, -1), Contains("avg_pool2d") && Contains("padding"));
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(x, {0, 2}), Contains("adaptive_avg_pool2d") && Contains("[2, 3, 5, 5]"));
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(F::zeros({3, 5}), 2), Contains("adaptive_avg_pool2d") && Contains("[3, 5]"));
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(F::zeros({1, 2, 0, 3}), 2),
                      Contains("adaptive_avg_pool2d") && Contains("[1, 2, 0, 3]"));
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(F(), 2), Contains("adaptive_avg_pool2d") && Contains("undefined"));
}
