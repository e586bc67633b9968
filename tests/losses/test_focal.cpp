// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/losses/cross_entropy.hpp"
#include "gkd/losses/focal.hpp"

using namespace gkd;
using gkd::test::labels;
using gkd::test::random;
using gkd::test::flat;
using gkd::test::require_gradcheck;
using gkd::test::require_thread_count_invariant;
using In = std::vector<Tensor<double>>;

TEST_CASE("focal_loss gradcheck", "[gradcheck][focal]") {
  const auto x = random({2, 4, 3, 5}, 111, 2.0);
  const auto t = labels({2, 3, 5}, 4, 112);
  const auto ti = labels({2, 3, 5}, 4, 113, 4, 255);
  const auto alpha = Tensor<double>::from({4}, {0.25, 0.75, 0.5, 1.0});
  for (double gamma : {0.0, 0.5, 1.0, 2.0}) {
    for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      INFO("gamma " << gamma << " reduction " << reduction_name(r));
      require_gradcheck([&](const In& v) { return focal_loss(v[0], t, gamma, {}, -100, r); }, {x});
      require_gradcheck([&](const In& v) { return focal_loss(v[0], ti, gamma, alpha, 255, r); }, {x});
    }
  }
  require_gradcheck([](const In& v) { return focal_loss(v[0], Tensor<double>::from({3}, {2, 0, 1}), 3.0); }, {random({3, 3}, 114)});
}

TEST_CASE("focal_loss reduces to cross_entropy and down-weights easy pixels", "[focal]") {
  const auto x = random({2, 5, 70}, 115, 3.0);
  const auto t = labels({2, 70}, 5, 116, 9, 1);
  gkd::test::require_close(focal_loss(x, t, 0.0, {}, 1), cross_entropy(x, t, {}, 1), 1e-12);
  gkd::test::require_close(focal_loss(x, t, 0.0, {}, 1, Reduction::None), cross_entropy(x, t, {}, 1, Reduction::None), 1e-12);
  const auto alpha = Tensor<double>::from({5}, {0.1, 0.2, 0.3, 0.4, 0.5});
  // with alpha, Sum equals weighted cross-entropy's sum; Mean divides by the count, not by Σ alpha
  gkd::test::require_close(focal_loss(x, t, 0.0, alpha, 1, Reduction::Sum), cross_entropy(x, t, alpha, 1, Reduction::Sum), 1e-12);
  double count = 0;  // positions not labelled 1 (the ignore_index)
  for (double v : t.to_vector()) count += v != 1;
  REQUIRE(focal_loss(x, t, 0.0, alpha, 1).item() ==
          Approx(cross_entropy(x, t, alpha, 1, Reduction::Sum).item() / count).epsilon(1e-12));
  const auto easy = Tensor<double>::from({1, 2}, {10, 0});
  REQUIRE(focal_loss(easy, Tensor<double>::from({1}, {0}), 2.0).item() <
          1e-6 * cross_entropy(easy, Tensor<double>::from({1}, {0})).item() + 1e-300);
  auto confident = Tensor<double>::from({1, 2}, {60, 0}).requires_grad();  // 1 − p_t underflows
  focal_loss(confident, Tensor<double>::from({1}, {0}), 0.5).backward();
  REQUIRE(std::isfinite(confident.grad().to_vector()[0]));
}

TEMPLATE_TEST_CASE("focal_loss matches the PyTorch reference formula", "[golden][focal]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("losses");
  const std::vector<bool> logits_only{true, false};
  const auto alpha = g.get<T>("focal.alpha");
  gkd::test::check_golden_case<T>(g, "focal_mean", [](const V& x) { return focal_loss(x[0], x[1]); }, logits_only);
  gkd::test::check_golden_case<T>(g, "focal_gamma0", [](const V& x) { return focal_loss(x[0], x[1], T(0)); }, logits_only);
  gkd::test::check_golden_case<T>(g, "focal_alpha_ignore_none",
                                  [&](const V& x) { return focal_loss(x[0], x[1], T(1.5), alpha, 255, Reduction::None); }, logits_only);
  gkd::test::check_golden_case<T>(g, "focal_alpha_ignore_mean",
                                  [&](const V& x) { return focal_loss(x[0], x[1], T(2), alpha, 255); }, logits_only);
  gkd::test::check_golden_case<T>(g, "focal_sum_gamma05", [](const V& x) { return focal_loss(x[0], x[1], T(0.5), {}, -100, Reduction::Sum); }, logits_only);
  gkd::test::check_golden_case<T>(g, "focal_2d", [](const V& x) { return focal_loss(x[0], x[1], T(2)); }, logits_only);
}

TEST_CASE("focal_loss bad input raises gkd::Error naming op and shapes", "[errors][focal]") {
  const auto x = Tensor<float>::zeros({2, 3, 4});
  const auto t = Tensor<float>::zeros({2, 4});
  REQUIRE_THROWS_WITH(focal_loss(x, Tensor<float>::zeros({2, 3})), Catch::Contains("focal_loss") && Catch::Contains("[2, 3]") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(focal_loss(x, t, -1.f), Catch::Contains("focal_loss") && Catch::Contains("gamma") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(focal_loss(x, Tensor<float>::full({2, 4}, 3)), Catch::Contains("focal_loss") && Catch::Contains("holds 3"));
  REQUIRE_THROWS_WITH(focal_loss(x, t, 2.f, Tensor<float>::ones({2})), Catch::Contains("focal_loss") && Catch::Contains("[2]") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(focal_loss(Tensor<float>::zeros({4}), Tensor<float>::zeros({})), Catch::Contains("focal_loss") && Catch::Contains("[4]"));
}

TEST_CASE("focal_loss gives identical results for any thread count", "[parallel][focal]") {
  Generator gen(117);
  const auto x = randn<float>({2, 4, 70, 70}, gen, 0.f, 2.f);
  auto t = randint<float>({2, 70, 70}, 4, gen);
  for (std::int64_t i = 0; i < t.numel(); i += 13) t.data()[i] = -100;
  const auto alpha = Tensor<float>::from({4}, {0.25f, 0.75f, 0.5f, 1.f});
  require_thread_count_invariant([&] {
    auto xg = x.clone().requires_grad();
    auto l = focal_loss(xg, t, 2.f, alpha);
    l.backward();
    return flat({l, xg.grad()});
  });
}
