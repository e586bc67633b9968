// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/losses/regression.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("regression losses gradcheck", "[gradcheck][regression]") {
  const auto x = random({2, 3, 4}, 81), y = random({2, 3, 4}, 82);
  for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << reduction_name(r));
    require_gradcheck([r](const In& v) { return mse_loss(v[0], v[1], r); }, {x, y});
    require_gradcheck([r](const In& v) { return l1_loss(v[0], v[1], r); }, {x, y});
    require_gradcheck([r](const In& v) { return smooth_l1_loss(v[0], v[1], r); }, {x, y});
    require_gradcheck([r](const In& v) { return smooth_l1_loss(v[0], v[1], r, 0.5); }, {x, y});
    require_gradcheck([r](const In& v) { return smooth_l1_loss(v[0], v[1], r, 0.0); }, {x, y});
  }
  require_gradcheck([](const In& v) { return mse_loss(v[0].transpose(0, 1), v[1]); }, {x, random({3, 2, 4}, 83)});
}

TEST_CASE("regression loss values", "[regression]") {
  const auto x = Tensor<double>::from({4}, {0, 1, 3, -2}), y = Tensor<double>::from({4}, {0, 0.5, 0, 0});
  REQUIRE(mse_loss(x, y, Reduction::Sum).item() == 0.25 + 9 + 4);
  REQUIRE(l1_loss(x, y).item() == (0.5 + 3 + 2) / 4);
  REQUIRE(smooth_l1_loss(x, y, Reduction::None).to_vector() == std::vector<double>{0, 0.125, 2.5, 1.5});
  REQUIRE(smooth_l1_loss(x, y, Reduction::None, 0.0).to_vector() == std::vector<double>{0, 0.5, 3, 2});
  auto a = Tensor<double>::from({2}, {1, 1}).requires_grad();
  l1_loss(a, Tensor<double>::from({2}, {1, 0}), Reduction::Sum).backward();
  REQUIRE(a.grad().to_vector() == std::vector<double>{0, 1});  // sign(0) = 0
}

TEMPLATE_TEST_CASE("regression losses match PyTorch", "[golden][regression]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("losses");
  gkd::test::check_golden_case<T>(g, "mse_mean", [](const V& x) { return mse_loss(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "mse_sum", [](const V& x) { return mse_loss(x[0], x[1], Reduction::Sum); });
  gkd::test::check_golden_case<T>(g, "mse_none", [](const V& x) { return mse_loss(x[0], x[1], Reduction::None); });
  gkd::test::check_golden_case<T>(g, "l1_mean", [](const V& x) { return l1_loss(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "l1_none", [](const V& x) { return l1_loss(x[0], x[1], Reduction::None); });
  gkd::test::check_golden_case<T>(g, "smooth_l1_mean", [](const V& x) { return smooth_l1_loss(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "smooth_l1_beta_none", [](const V& x) { return smooth_l1_loss(x[0], x[1], Reduction::None, T(0.5)); });
  gkd::test::check_golden_case<T>(g, "smooth_l1_beta0_sum", [](const V& x) { return smooth_l1_loss(x[0], x[1], Reduction::Sum, T(0)); });
}

TEST_CASE("regression bad input raises gkd::Error naming op and shapes", "[errors][regression]") {
  const auto a = Tensor<float>::zeros({2, 3}), b = Tensor<float>::zeros({3, 2});
  REQUIRE_THROWS_WITH(mse_loss(a, b), Catch::Contains("mse_loss") && Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  REQUIRE_THROWS_WITH(l1_loss(a, Tensor<float>::zeros({3})), Catch::Contains("l1_loss") && Catch::Contains("[2, 3]") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(smooth_l1_loss(a, b), Catch::Contains("smooth_l1_loss") && Catch::Contains("[3, 2]"));
  REQUIRE_THROWS_WITH(smooth_l1_loss(a, a, Reduction::Mean, -1.f), Catch::Contains("smooth_l1_loss") && Catch::Contains("beta") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(mse_loss(a, Tensor<float>()), Catch::Contains("mse_loss") && Catch::Contains("undefined"));
}
