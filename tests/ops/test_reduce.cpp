// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::flat;
using gkd::test::require_gradcheck;
using gkd::test::require_thread_count_invariant;
using In = std::vector<Tensor<double>>;

TEST_CASE("reductions gradcheck", "[gradcheck][reduce]") {
  const auto x = random({2, 3, 4}, 21);
  require_gradcheck([](const In& v) { return sum(v[0]); }, {x});
  require_gradcheck([](const In& v) { return sum(v[0], {0, 2}, true); }, {x});
  require_gradcheck([](const In& v) { return mean(v[0], {-1}); }, {x});
  require_gradcheck([](const In& v) { return var(v[0], {1, 2}); }, {x});
  require_gradcheck([](const In& v) { return max(v[0], 1); }, {x});
  require_gradcheck([](const In& v) { return min(v[0], 2, true); }, {x});
  require_gradcheck([](const In& v) { return max(v[0]); }, {x});
  require_gradcheck([](const In& v) { return softmax(v[0], 1); }, {x});
  require_gradcheck([](const In& v) { return log_softmax(v[0], -1); }, {x});
}

TEST_CASE("matrix products gradcheck", "[gradcheck][linalg]") {
  require_gradcheck([](const In& v) { return matmul(v[0], v[1]); }, {random({3, 4}, 1), random({4, 2}, 2)});
  require_gradcheck([](const In& v) { return bmm(v[0], v[1]); }, {random({2, 3, 4}, 3), random({2, 4, 2}, 4)});
  require_gradcheck([](const In& v) { return linear(v[0], v[1], v[2]); },
                    {random({2, 3, 5}, 5), random({4, 5}, 6), random({4}, 7)});
  require_gradcheck([](const In& v) { return linear(v[0], v[1]); }, {random({3, 5}, 8), random({2, 5}, 9)});
}

TEMPLATE_TEST_CASE("reductions, softmax and products match PyTorch", "[golden][reduce]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("reduce");
  gkd::test::check_golden_case<T>(g, "sum_all", [](const V& x) { return sum(x[0]); });
  gkd::test::check_golden_case<T>(g, "sum_dims", [](const V& x) { return sum(x[0], {1, 3}, true); });
  gkd::test::check_golden_case<T>(g, "mean_dims", [](const V& x) { return mean(x[0], {0, 2}); });
  gkd::test::check_golden_case<T>(g, "var_dims", [](const V& x) { return var(x[0], {2, 3}); });
  gkd::test::check_golden_case<T>(g, "max_dim", [](const V& x) { return max(x[0], 2); });
  gkd::test::check_golden_case<T>(g, "min_dim", [](const V& x) { return min(x[0], -1, true); });
  gkd::test::check_golden_case<T>(g, "softmax", [](const V& x) { return softmax(x[0], 1); });
  gkd::test::check_golden_case<T>(g, "log_softmax", [](const V& x) { return log_softmax(x[0], -1); });
  gkd::test::check_golden_case<T>(g, "matmul", [](const V& x) { return matmul(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "linear", [](const V& x) { return linear(x[0], x[1], x[2]); });
}

TEST_CASE("reduction values", "[reduce]") {
  const auto x = Tensor<double>::from({2, 3}, {1, 5, 3, 4, 2, 6});
  REQUIRE(sum(x).item() == 21);
  REQUIRE(sum(x, {1}).to_vector() == std::vector<double>{9, 12});
  REQUIRE(max(x, 1).to_vector() == std::vector<double>{5, 6});
  REQUIRE(argmax(x, 1).to_vector() == std::vector<double>{1, 2});
  REQUIRE(var(x, {0}).to_vector() == std::vector<double>{4.5, 4.5, 4.5});
  const auto p = softmax(Tensor<double>::from({1, 3}, {1000, 1000, 1000}), 1);  // stable for large logits
  REQUIRE(p.to_vector()[0] == Approx(1.0 / 3));
}

TEST_CASE("linear with an empty input dim is its bias", "[reduce]") {
  const auto x = Tensor<double>::zeros({3, 0}).requires_grad();
  const auto w = Tensor<double>::zeros({2, 0}).requires_grad();
  const auto b = Tensor<double>::from({2}, {1, 2}).requires_grad();
  const auto y = linear(x, w, b);
  REQUIRE(y.shape() == gkd::Shape{3, 2});
  REQUIRE(y.to_vector() == std::vector<double>{1, 2, 1, 2, 1, 2});
  sum(y).backward();
  REQUIRE(b.grad().to_vector() == std::vector<double>{3, 3});
  REQUIRE(w.grad().shape() == gkd::Shape{2, 0});
}

TEST_CASE("reduction and product errors", "[errors][reduce]") {
  const auto x = Tensor<double>::zeros({2, 3});
  REQUIRE_THROWS_WITH(sum(x, {2}), Catch::Contains("sum") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(sum(x, {1, -1}), Catch::Contains("given twice"));
  REQUIRE_THROWS_WITH(softmax(x, 5), Catch::Contains("softmax"));
  REQUIRE_THROWS_WITH(max(Tensor<double>::zeros({2, 0}), 1), Catch::Contains("max") && Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(matmul(x, x), Catch::Contains("matmul") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(linear(x, Tensor<double>::zeros({4, 2})), Catch::Contains("linear") && Catch::Contains("[4, 2]"));
  REQUIRE_THROWS_WITH(bmm(x, x), Catch::Contains("bmm"));
  REQUIRE_THROWS_WITH(var(Tensor<double>::zeros({1, 3}), {0}), Catch::Contains("var"));
}

TEST_CASE("sum does not depend on the thread count", "[reduce][parallel]") {
  const auto x = random({3, 100000}, 41);
  require_thread_count_invariant([&] { return flat({sum(x)}); });
}
