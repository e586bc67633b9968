// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/losses/bce.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("binary_cross_entropy_with_logits gradcheck", "[gradcheck][bce]") {
  const auto x = random({2, 3, 4}, 71, 3.0);
  Generator gen(72);
  const auto y = rand<double>({2, 3, 4}, gen);
  const auto pw = Tensor<double>::from({3, 1}, {0.5, 2.0, 3.0});
  const auto w = rand<double>({4}, gen);
  for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << reduction_name(r));
    require_gradcheck([&](const In& v) { return binary_cross_entropy_with_logits(v[0], y, r); }, {x});
    require_gradcheck([&](const In& v) { return binary_cross_entropy_with_logits(v[0], y, r, pw, w); }, {x});
  }
  require_gradcheck([&](const In& v) { return binary_cross_entropy_with_logits(v[0].transpose(0, 2), y.transpose(0, 2)); }, {x});
}

TEST_CASE("binary_cross_entropy_with_logits is stable for large logits", "[bce]") {
  const auto x = Tensor<float>::from({4}, {200.f, -200.f, 200.f, -200.f});
  const auto y = Tensor<float>::from({4}, {1, 0, 0, 1});
  const auto l = binary_cross_entropy_with_logits(x, y, Reduction::None).to_vector();
  REQUIRE(l == std::vector<float>{0, 0, 200, 200});
  auto xd = Tensor<double>::from({2}, {0, 0}).requires_grad();
  binary_cross_entropy_with_logits(xd, Tensor<double>::from({2}, {1, 0}), Reduction::Sum).backward();
  REQUIRE(xd.grad().to_vector() == std::vector<double>{-0.5, 0.5});
}

TEMPLATE_TEST_CASE("binary_cross_entropy_with_logits matches PyTorch", "[golden][bce]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("losses");
  const std::vector<bool> input_only{true, false};
  const auto pw = g.get<T>("bce.pos_weight"), w = g.get<T>("bce.weight");
  gkd::test::check_golden_case<T>(g, "bce_mean", [](const V& x) { return binary_cross_entropy_with_logits(x[0], x[1]); }, input_only);
  gkd::test::check_golden_case<T>(g, "bce_sum", [](const V& x) { return binary_cross_entropy_with_logits(x[0], x[1], Reduction::Sum); }, input_only);
  gkd::test::check_golden_case<T>(g, "bce_none", [](const V& x) { return binary_cross_entropy_with_logits(x[0], x[1], Reduction::None); }, input_only);
  gkd::test::check_golden_case<T>(g, "bce_pos_weight", [&](const V& x) { return binary_cross_entropy_with_logits(x[0], x[1], Reduction::Mean, pw); }, input_only);
  gkd::test::check_golden_case<T>(g, "bce_pos_weight_weight_none",
                                  [&](const V& x) { return binary_cross_entropy_with_logits(x[0], x[1], Reduction::None, pw, w); }, input_only);
  gkd::test::check_golden_case<T>(g, "bce_large", [](const V& x) { return binary_cross_entropy_with_logits(x[0], x[1], Reduction::Sum); }, input_only);
}

TEST_CASE("binary_cross_entropy_with_logits bad input raises gkd::Error naming op and shapes", "[errors][bce]") {
  const auto x = Tensor<float>::zeros({2, 3});
  REQUIRE_THROWS_WITH(binary_cross_entropy_with_logits(x, Tensor<float>::zeros({3})),
                      Catch::Contains("binary_cross_entropy_with_logits") && Catch::Contains("[2, 3]") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(binary_cross_entropy_with_logits(x, x, Reduction::Mean, Tensor<float>::ones({2})),
                      Catch::Contains("binary_cross_entropy_with_logits") && Catch::Contains("pos_weight") && Catch::Contains("[2]"));
  REQUIRE_THROWS_WITH(binary_cross_entropy_with_logits(x, x, Reduction::Mean, {}, Tensor<float>::ones({1, 2, 3})),
                      Catch::Contains("binary_cross_entropy_with_logits") && Catch::Contains("[1, 2, 3]"));
  REQUIRE_THROWS_WITH(binary_cross_entropy_with_logits(Tensor<float>(), x), Catch::Contains("binary_cross_entropy_with_logits") && Catch::Contains("undefined"));
}
