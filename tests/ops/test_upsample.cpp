// SPDX-License-Identifier: Apache-2.0
#include "gkd/ops/upsample.hpp"

#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("upsampling gradcheck", "[gradcheck][upsample]") {
  const auto x = random({2, 2, 3, 4}, 1);
  SECTION("bilinear by size, both align_corners") {
    require_gradcheck([](const In& v) { return upsample_bilinear2d(v[0], {5, 7}, false); }, {x});
    require_gradcheck([](const In& v) { return upsample_bilinear2d(v[0], {5, 7}, true); }, {x});
    require_gradcheck([](const In& v) { return upsample_bilinear2d(v[0], {2, 4}, false); }, {x});
    require_gradcheck([](const In& v) { return upsample_bilinear2d(v[0], {1, 3}, true); }, {x});
  }
  SECTION("bilinear by scale") {
    require_gradcheck([](const In& v) { return upsample_bilinear2d(v[0], 2.0, false); }, {x});
    require_gradcheck([](const In& v) { return upsample_bilinear2d(v[0], Scale2{1.7, 0.6}, true); }, {x});
    require_gradcheck([](const In& v) { return upsample_bilinear2d(v[0], Scale2{1.7, 0.6}, false); }, {x});
  }
  SECTION("nearest by size and scale") {
    require_gradcheck([](const In& v) { return upsample_nearest2d(v[0], {7, 5}); }, {x});
    require_gradcheck([](const In& v) { return upsample_nearest2d(v[0], 2.0); }, {x});
    require_gradcheck([](const In& v) { return upsample_nearest2d(v[0], Scale2{1.5, 0.75}); }, {x});
    require_gradcheck([](const In& v) { return upsample_nearest2d(v[0], {2, 3}); }, {x});
  }
}

TEMPLATE_TEST_CASE("upsampling matches PyTorch", "[golden][upsample]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("upsample");
  gkd::test::check_golden_case<T>(g, "bilinear_size", [](const V& v) { return upsample_bilinear2d(v[0], {6, 7}, false); });
  gkd::test::check_golden_case<T>(g, "bilinear_size_align",
                                  [](const V& v) { return upsample_bilinear2d(v[0], {6, 7}, true); });
  gkd::test::check_golden_case<T>(g, "bilinear_scale2", [](const V& v) { return upsample_bilinear2d(v[0], 2.0, false); });
  gkd::test::check_golden_case<T>(g, "bilinear_scale2_align",
                                  [](const V& v) { return upsample_bilinear2d(v[0], 2.0, true); });
  gkd::test::check_golden_case<T>(g, "bilinear_scale_frac",
                                  [](const V& v) { return upsample_bilinear2d(v[0], Scale2{1.7, 0.6}, false); });
  gkd::test::check_golden_case<T>(g, "bilinear_down", [](const V& v) { return upsample_bilinear2d(v[0], {3, 2}, false); });
  gkd::test::check_golden_case<T>(g, "bilinear_down_align",
                                  [](const V& v) { return upsample_bilinear2d(v[0], {3, 1}, true); });
  gkd::test::check_golden_case<T>(g, "bilinear_same_height",
                                  [](const V& v) { return upsample_bilinear2d(v[0], {4, 7}, false); });
  gkd::test::check_golden_case<T>(g, "nearest_size", [](const V& v) { return upsample_nearest2d(v[0], {6, 7}); });
  gkd::test::check_golden_case<T>(g, "nearest_scale2", [](const V& v) { return upsample_nearest2d(v[0], 2.0); });
  gkd::test::check_golden_case<T>(g, "nearest_scale_frac",
                                  [](const V& v) { return upsample_nearest2d(v[0], Scale2{1.5, 0.75}); });
  gkd::test::check_golden_case<T>(g, "nearest_down", [](const V& v) { return upsample_nearest2d(v[0], {3, 2}); });
}

TEST_CASE("upsampling sizes, identities and views", "[upsample]") {
  const auto base = random({3, 4, 5, 6}, 2);
  const auto x = base.transpose(2, 3);  // [3, 4, 6, 5], non-contiguous
  REQUIRE(upsample_bilinear2d(x, 2.0).shape() == Shape{3, 4, 12, 10});
  REQUIRE(upsample_nearest2d(x, Scale2{0.5, 1.5}).shape() == Shape{3, 4, 3, 7});
  // Same size is the identity in both modes; align_corners=true keeps the corners.
  test::require_close(upsample_bilinear2d(x, {6, 5}, false), x, 0.0);
  test::require_close(upsample_nearest2d(x, {6, 5}), x, 0.0);
  const auto up = upsample_bilinear2d(x, {11, 9}, true);
  REQUIRE(up.at({1, 2, 10, 8}) == x.at({1, 2, 5, 4}));
  REQUIRE(up.at({2, 3, 0, 8}) == x.at({2, 3, 0, 4}));
  // Nearest x2 repeats each pixel in a 2x2 block.
  const auto rep = upsample_nearest2d(x, 2.0);
  for (std::int64_t i = 0; i < 12; ++i) REQUIRE(rep.at({1, 1, i, 7}) == x.at({1, 1, i / 2, 3}));
}

TEST_CASE("upsampling bad input raises gkd::Error naming op and shapes", "[errors][upsample]") {
  using F = Tensor<float>;
  using Catch::Contains;
  const auto x = F::zeros({1, 2, 3, 4});
  REQUIRE_THROWS_WITH(upsample_bilinear2d(F::zeros({2, 3, 4}), {4, 4}),
                      Contains("upsample_bilinear2d") && Contains("[2, 3, 4]") && Contains("4-D"));
  REQUIRE_THROWS_WITH(upsample_bilinear2d(x, {0, 4}), Contains("upsample_bilinear2d") && Contains("[1, 2, 3, 4]"));
  REQUIRE_THROWS_WITH(upsample_bilinear2d(x, -2.0), Contains("upsample_bilinear2d") && Contains("scale"));
  REQUIRE_THROWS_WITH(upsample_bilinear2d(x, 0.2), Contains("upsample_bilinear2d") && Contains("empty output") &&
                                                       Contains("[1, 2, 3, 4]"));
  REQUIRE_THROWS_WITH(upsample_bilinear2d(F(), 2.0), Contains("upsample_bilinear2d") && Contains("undefined"));
  REQUIRE_THROWS_WITH(upsample_nearest2d(F::zeros({1, 2, 3, 4, 5}), 2.0),
                      Contains("upsample_nearest2d") && Contains("[1, 2, 3, 4, 5]"));
  REQUIRE_THROWS_WITH(upsample_nearest2d(x, {3, -1}), Contains("upsample_nearest2d") && Contains("[1, 2, 3, 4]"));
  REQUIRE_THROWS_WITH(upsample_nearest2d(F::zeros({1, 2, 0, 4}), 2.0),
                      Contains("upsample_nearest2d") && Contains("[1, 2, 0, 4]"));
  REQUIRE_THROWS_WITH(upsample_nearest2d(x, Scale2{1.0, std::numeric_limits<double>::infinity()}),
                      Contains("upsample_nearest2d") && Contains("scale"));
}
