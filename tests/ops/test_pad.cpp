// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/ops/pad.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::flat;
using gkd::test::require_gradcheck;
using gkd::test::require_thread_count_invariant;
using In = std::vector<Tensor<double>>;

TEST_CASE("pad gradcheck", "[gradcheck][pad]") {
  const auto x = random({2, 2, 4, 5}, 31);
  require_gradcheck([](const In& v) { return pad(v[0], {1, 2}); }, {x});
  require_gradcheck([](const In& v) { return pad(v[0], {1, 0, 2, 1}, PadMode::Zero, 0.5); }, {x});
  require_gradcheck([](const In& v) { return pad(v[0], {-1, 2, 0, -2}); }, {x});
  require_gradcheck([](const In& v) { return pad(v[0], {3, 2, 3, 1}, PadMode::Reflect); }, {x});
  require_gradcheck([](const In& v) { return pad(v[0], {2, 3, 1, 2}, PadMode::Replicate); }, {x});
  require_gradcheck([](const In& v) { return pad(v[0], {1, 1, 0, 0, 1, 0}, PadMode::Reflect); }, {x});
  require_gradcheck([](const In& v) { return pad(v[0].transpose(2, 3), {1, 1, 2, 2}, PadMode::Reflect); }, {x});
  require_gradcheck([](const In& v) { return pad(v[0], {1, 1, 2, 0}, PadMode::Reflect); }, {random({3, 4}, 32)});
}

TEST_CASE("pad values", "[pad]") {
  const auto x = Tensor<float>::from({1, 4}, {1, 2, 3, 4});
  REQUIRE(pad(x, {2, 1}).to_vector() == std::vector<float>{0, 0, 1, 2, 3, 4, 0});
  REQUIRE(pad(x, {2, 1}, PadMode::Zero, 9.f).to_vector() == std::vector<float>{9, 9, 1, 2, 3, 4, 9});
  REQUIRE(pad(x, {3, 2}, PadMode::Reflect).to_vector() == std::vector<float>{4, 3, 2, 1, 2, 3, 4, 3, 2});
  REQUIRE(pad(x, {2, 2}, PadMode::Replicate).to_vector() == std::vector<float>{1, 1, 1, 2, 3, 4, 4, 4});
  REQUIRE(pad(x, {-1, -2}).to_vector() == std::vector<float>{2});
  REQUIRE(pad(x, {0, 0, 1, 0}).shape() == Shape{2, 4});
  REQUIRE(pad(x, {}).to_vector() == x.to_vector());
  REQUIRE(pad(Tensor<float>::scalar(3), {}).item() == 3.f);
  REQUIRE(pad(Tensor<float>::zeros({2, 0}), {1, 1}, PadMode::Zero, 1.f).to_vector() == std::vector<float>{1, 1, 1, 1});
  REQUIRE(pad(Tensor<float>::zeros({0, 3}), {1, 1}).shape() == Shape{0, 5});
}

TEMPLATE_TEST_CASE("pad matches PyTorch F.pad", "[golden][pad]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("shape_ops");
  gkd::test::check_golden_case<T>(g, "pad_zero", [](const V& x) { return pad(x[0], {1, 2, 2, 1}); });
  gkd::test::check_golden_case<T>(g, "pad_value", [](const V& x) { return pad(x[0], {0, 3}, PadMode::Zero, T(-1.5)); });
  gkd::test::check_golden_case<T>(g, "pad_crop", [](const V& x) { return pad(x[0], {-1, 2, 1, -2}); });
  gkd::test::check_golden_case<T>(g, "pad_reflect", [](const V& x) { return pad(x[0], {3, 1, 2, 3}, PadMode::Reflect); });
  gkd::test::check_golden_case<T>(g, "pad_reflect_1d", [](const V& x) { return pad(x[0], {2, 4}, PadMode::Reflect); });
  gkd::test::check_golden_case<T>(g, "pad_reflect_3d", [](const V& x) { return pad(x[0], {1, 2, 2, 1, 1, 1}, PadMode::Reflect); });
  gkd::test::check_golden_case<T>(g, "pad_replicate", [](const V& x) { return pad(x[0], {2, 3, 1, 2}, PadMode::Replicate); });
}

TEST_CASE("pad bad input raises gkd::Error naming op and shapes", "[errors][pad]") {
  const auto x = Tensor<float>::zeros({2, 3, 4});
  REQUIRE_THROWS_WITH(pad(x, {1}), Catch::Contains("pad") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(pad(x, {1, 1, 1, 1, 1, 1, 1, 1}), Catch::Contains("pad") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(pad(x, {4, 0}, PadMode::Reflect), Catch::Contains("pad") && Catch::Contains("reflect") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(pad(x, {0, 0, 0, 3}, PadMode::Reflect), Catch::Contains("pad") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(pad(x, {-1, 0}, PadMode::Replicate), Catch::Contains("pad") && Catch::Contains("negative"));
  REQUIRE_THROWS_WITH(pad(x, {-3, -2}), Catch::Contains("pad") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(pad(x, {1, 1}, PadMode::Reflect, 2.f), Catch::Contains("pad") && Catch::Contains("value"));
  REQUIRE_THROWS_WITH(pad(Tensor<float>::zeros({2, 0}), {1, 1}, PadMode::Replicate), Catch::Contains("pad") && Catch::Contains("[2, 0]"));
  REQUIRE_THROWS_WITH(pad(Tensor<float>(), {1, 1}), Catch::Contains("pad") && Catch::Contains("undefined"));
}

TEST_CASE("pad gives identical results for any thread count", "[parallel][pad]") {
  Generator gen(33);
  const auto x = randn<float>({4, 3, 60, 50}, gen);
  for (auto mode : {PadMode::Zero, PadMode::Reflect, PadMode::Replicate}) {
    require_thread_count_invariant([&] {
      auto xg = x.clone().requires_grad();
      auto y = pad(xg, {3, 2, 4, 1}, mode);
      Generator g2(34);
      y.backward(randn<float>(y.shape(), g2));
      return flat({y, xg.grad()});
    });
  }
}
