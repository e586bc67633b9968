// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/losses/dice.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::flat;
using gkd::test::require_gradcheck;
using gkd::test::require_thread_count_invariant;
using In = std::vector<Tensor<double>>;

TEST_CASE("dice_loss gradcheck", "[gradcheck][dice]") {
  const auto x = random({2, 3, 4, 5}, 121);
  Generator gen(122);
  const auto labels = randint<double>({2, 4, 5}, 3, gen);
  const auto masks = one_hot(labels, 3);
  const auto probs = softmax(random({2, 3, 4, 5}, 123), 1);
  for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << reduction_name(r));
    require_gradcheck([&](const In& v) { return dice_loss(v[0], masks, 1.0, DiceActivation::None, r); }, {probs});
    require_gradcheck([&](const In& v) { return dice_loss(v[0], labels, 0.5, DiceActivation::Softmax, r); }, {x});
    require_gradcheck([&](const In& v) { return dice_loss(v[0], masks, 0.0, DiceActivation::Sigmoid, r); }, {x});
  }
  const auto soft = rand<double>({2, 3, 4, 5}, gen);
  require_gradcheck([&](const In& v) { return dice_loss(v[0].transpose(2, 3), soft.transpose(2, 3), 2.0); }, {probs});
}

TEST_CASE("dice_loss values", "[dice]") {
  Generator gen(124);
  const auto labels = randint<double>({2, 6, 7}, 4, gen);
  const auto masks = one_hot(labels, 4);
  const auto logits = random({2, 4, 6, 7}, 125);
  // class indices and their one-hot masks give the same loss
  for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    gkd::test::require_close(dice_loss(logits, labels, 1.0, DiceActivation::Softmax, r),
                             dice_loss(logits, masks, 1.0, DiceActivation::Softmax, r), 1e-14);
  REQUIRE(dice_loss(masks, masks, 0.0).item() == 0.0);               // perfect prediction
  REQUIRE(dice_loss(masks, 1.0 - masks, 0.0).item() == 1.0);         // disjoint
  // a class absent from prediction and target: loss 0 with smoothing, NaN without
  const auto absent = Tensor<double>::from({1, 2, 2}, {1, 1, 0, 0});
  REQUIRE(dice_loss(absent, absent, 1.0, DiceActivation::None, Reduction::None).to_vector() == std::vector<double>{0, 0});
  REQUIRE(std::isnan(dice_loss(absent, absent, 0.0, DiceActivation::None, Reduction::None).to_vector()[1]));
  // the exact formula: 1 − (2 Σ p t + s) / (Σ p + Σ t + s)
  const auto p = Tensor<double>::from({1, 1, 4}, {0.5, 0.25, 1, 0}), t = Tensor<double>::from({1, 1, 4}, {1, 0, 1, 1});
  REQUIRE(dice_loss(p, t, 1.0).item() == Approx(1 - (2 * 1.5 + 1) / (1.75 + 3 + 1)).epsilon(1e-15));
}

TEMPLATE_TEST_CASE("dice_loss matches the PyTorch reference formula", "[golden][dice]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("losses");
  const std::vector<bool> input_only{true, false};
  gkd::test::check_golden_case<T>(g, "dice_probs_onehot", [](const V& x) { return dice_loss(x[0], x[1]); }, input_only);
  gkd::test::check_golden_case<T>(g, "dice_softmax_indices",
                                  [](const V& x) { return dice_loss(x[0], x[1], T(1), DiceActivation::Softmax); }, input_only);
  gkd::test::check_golden_case<T>(g, "dice_sigmoid_binary_sum",
                                  [](const V& x) { return dice_loss(x[0], x[1], T(0.5), DiceActivation::Sigmoid, Reduction::Sum); }, input_only);
  gkd::test::check_golden_case<T>(g, "dice_softmax_none_smooth0",
                                  [](const V& x) { return dice_loss(x[0], x[1], T(0), DiceActivation::Softmax, Reduction::None); }, input_only);
}

TEST_CASE("dice_loss bad input raises gkd::Error naming op and shapes", "[errors][dice]") {
  const auto x = Tensor<float>::zeros({2, 3, 4});
  REQUIRE_THROWS_WITH(dice_loss(x, Tensor<float>::zeros({2, 3})), Catch::Contains("dice_loss") && Catch::Contains("[2, 3]") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(dice_loss(x, x, -1.f), Catch::Contains("dice_loss") && Catch::Contains("smooth") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(dice_loss(x, Tensor<float>::full({2, 4}, 3)), Catch::Contains("dice_loss") && Catch::Contains("holds 3"));
  REQUIRE_THROWS_WITH(dice_loss(Tensor<float>::zeros({4}), Tensor<float>::zeros({4})), Catch::Contains("dice_loss") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(dice_loss(x, Tensor<float>()), Catch::Contains("dice_loss") && Catch::Contains("undefined"));
}

TEST_CASE("dice_loss gives identical results for any thread count", "[parallel][dice]") {
  Generator gen(126);
  const auto x = randn<float>({2, 4, 70, 70}, gen);
  const auto t = randint<float>({2, 70, 70}, 4, gen);
  require_thread_count_invariant([&] {
    auto xg = x.clone().requires_grad();
    auto l = dice_loss(xg, t, 1.f, DiceActivation::Softmax);
    l.backward();
    return flat({l, xg.grad()});
  });
}
