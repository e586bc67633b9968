// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/losses/cross_entropy.hpp"

using namespace gkd;
using gkd::test::labels;
using gkd::test::random;
using gkd::test::flat;
using gkd::test::require_gradcheck;
using gkd::test::require_thread_count_invariant;
using In = std::vector<Tensor<double>>;

TEST_CASE("cross_entropy and nll_loss gradcheck", "[gradcheck][cross_entropy]") {
  const auto x = random({2, 4, 3, 5}, 61, 2.0);
  const auto t = labels({2, 3, 5}, 4, 62);
  const auto ti = labels({2, 3, 5}, 4, 62, 3, 255);
  const auto w = Tensor<double>::from({4}, {0.5, 2.0, 1.0, 0.25});
  for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << reduction_name(r));
    require_gradcheck([&](const In& v) { return cross_entropy(v[0], t, {}, -100, r); }, {x});
    require_gradcheck([&](const In& v) { return cross_entropy(v[0], ti, w, 255, r); }, {x});
    require_gradcheck([&](const In& v) { return nll_loss(v[0], ti, w, 255, r); }, {x});
  }
  require_gradcheck([](const In& v) { return cross_entropy(v[0], Tensor<double>::from({3}, {2, 0, 1})); }, {random({3, 3}, 63)});
  require_gradcheck([&](const In& v) { return cross_entropy(v[0].permute({0, 3, 1, 2}), t); },
                    {random({2, 3, 5, 4}, 64)});
  require_gradcheck([&](const In& v) { return nll_loss(log_softmax(v[0], 1), t); }, {x});
}

TEST_CASE("cross_entropy equals nll_loss of log_softmax and is stable", "[cross_entropy]") {
  const auto x = random({3, 5, 70}, 65, 3.0);  // more than one block of pixels
  const auto t = labels({3, 70}, 5, 66, 7, 2);
  const auto w = Tensor<double>::from({5}, {1, 2, 3, 0.5, 1});
  for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    gkd::test::require_close(cross_entropy(x, t, w, 2, r), nll_loss(log_softmax(x, 1), t, w, 2, r), 1e-12);
  const auto big = Tensor<float>::from({1, 3}, {1000.f, -1000.f, 0.f});
  REQUIRE(cross_entropy(big, Tensor<float>::from({1}, {0})).item() == 0.f);
  REQUIRE(cross_entropy(big, Tensor<float>::from({1}, {1})).item() == 2000.f);
  // every position ignored: the mean is 0/0 = NaN (as in PyTorch); the gradient is 0
  auto x2 = Tensor<double>::zeros({2, 3}).requires_grad();
  auto all_ignored = cross_entropy(x2, Tensor<double>::full({2}, -100));
  REQUIRE(std::isnan(all_ignored.item()));
  REQUIRE(cross_entropy(x2, Tensor<double>::full({2}, -100), {}, -100, Reduction::Sum).item() == 0.0);
  all_ignored.backward();
  REQUIRE(x2.grad().to_vector() == std::vector<double>(6, 0.0));
}

TEMPLATE_TEST_CASE("cross_entropy and nll_loss match PyTorch", "[golden][cross_entropy]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("losses");
  const std::vector<bool> logits_only{true, false};
  const auto w = g.get<T>("ce.weight");
  gkd::test::check_golden_case<T>(g, "ce_mean", [](const V& x) { return cross_entropy(x[0], x[1]); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_sum", [](const V& x) { return cross_entropy(x[0], x[1], {}, -100, Reduction::Sum); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_none", [](const V& x) { return cross_entropy(x[0], x[1], {}, -100, Reduction::None); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_weight_mean", [&](const V& x) { return cross_entropy(x[0], x[1], w); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_weight_sum", [&](const V& x) { return cross_entropy(x[0], x[1], w, -100, Reduction::Sum); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_ignore_mean", [](const V& x) { return cross_entropy(x[0], x[1], {}, 255); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_weight_ignore_mean", [&](const V& x) { return cross_entropy(x[0], x[1], w, 255); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_weight_ignore_none", [&](const V& x) { return cross_entropy(x[0], x[1], w, 255, Reduction::None); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_ignore_class", [](const V& x) { return cross_entropy(x[0], x[1], {}, 0); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_2d", [](const V& x) { return cross_entropy(x[0], x[1]); }, logits_only);
  gkd::test::check_golden_case<T>(g, "ce_3d", [](const V& x) { return cross_entropy(x[0], x[1], {}, -100, Reduction::Sum); }, logits_only);
  gkd::test::check_golden_case<T>(g, "nll_mean", [](const V& x) { return nll_loss(x[0], x[1]); }, logits_only);
  gkd::test::check_golden_case<T>(g, "nll_weight_ignore_mean", [&](const V& x) { return nll_loss(x[0], x[1], w, 255); }, logits_only);
  gkd::test::check_golden_case<T>(g, "nll_weight_ignore_none", [&](const V& x) { return nll_loss(x[0], x[1], w, 255, Reduction::None); }, logits_only);
  gkd::test::check_golden_case<T>(g, "nll_sum", [](const V& x) { return nll_loss(x[0], x[1], {}, -100, Reduction::Sum); }, logits_only);
}

TEST_CASE("cross_entropy bad input raises gkd::Error naming op and shapes", "[errors][cross_entropy]") {
  const auto x = Tensor<float>::zeros({2, 3, 4});
  const auto t = Tensor<float>::zeros({2, 4});
  REQUIRE_THROWS_WITH(cross_entropy(x, Tensor<float>::zeros({2, 3})), Catch::Contains("cross_entropy") && Catch::Contains("[2, 3]") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(cross_entropy(Tensor<float>::zeros({3}), Tensor<float>::zeros({})), Catch::Contains("cross_entropy") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(cross_entropy(x, Tensor<float>::full({2, 4}, 3)), Catch::Contains("cross_entropy") && Catch::Contains("[2, 4]") && Catch::Contains("holds 3"));
  REQUIRE_THROWS_WITH(cross_entropy(x, Tensor<float>::full({2, 4}, -1)), Catch::Contains("cross_entropy") && Catch::Contains("holds -1"));
  REQUIRE_THROWS_WITH(cross_entropy(x, Tensor<float>::full({2, 4}, 0.5f)), Catch::Contains("cross_entropy") && Catch::Contains("0.5"));
  REQUIRE_THROWS_WITH(cross_entropy(x, t, Tensor<float>::ones({4})), Catch::Contains("cross_entropy") && Catch::Contains("[4]") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(cross_entropy(Tensor<float>::zeros({2, 0}), Tensor<float>::zeros({2})), Catch::Contains("cross_entropy") && Catch::Contains("[2, 0]"));
  REQUIRE_THROWS_WITH(nll_loss(x, Tensor<float>::zeros({4, 2})), Catch::Contains("nll_loss") && Catch::Contains("[4, 2]") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(nll_loss(x, Tensor<float>::full({2, 4}, 7), {}, 255), Catch::Contains("nll_loss") && Catch::Contains("holds 7"));
  REQUIRE_THROWS_WITH(cross_entropy(Tensor<float>(), t), Catch::Contains("cross_entropy") && Catch::Contains("undefined"));
}

TEST_CASE("cross_entropy and nll_loss give identical results for any thread count", "[parallel][cross_entropy]") {
  Generator gen(67);
  const auto x = randn<float>({2, 5, 60, 60}, gen);  // 36000 elements: many blocks, OpenMP on
  auto t = randint<float>({2, 60, 60}, 5, gen);
  for (std::int64_t i = 0; i < t.numel(); i += 11) t.data()[i] = 255;
  const auto w = Tensor<float>::from({5}, {1, 2, 0.5f, 1, 3});
  for (auto r : {Reduction::Mean, Reduction::None}) {
    require_thread_count_invariant([&] {
      auto xg = x.clone().requires_grad();
      auto l = cross_entropy(xg, t, w, 255, r);
      l.backward(r == Reduction::None ? Tensor<float>::ones(l.shape()) : Tensor<float>());
      auto xn = x.clone().requires_grad();
      auto n = nll_loss(xn, t, w, 255, r);
      n.backward(r == Reduction::None ? Tensor<float>::ones(n.shape()) : Tensor<float>());
      return flat({l, xg.grad(), n, xn.grad()});
    });
  }
}
