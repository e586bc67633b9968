// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/ops/index.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::flat;
using gkd::test::require_gradcheck;
using gkd::test::require_thread_count_invariant;
using In = std::vector<Tensor<double>>;

TEST_CASE("index_select and gather gradcheck", "[gradcheck][index]") {
  const auto x = random({3, 4, 5}, 41);
  const auto idx = Tensor<double>::from({5}, {3, 0, 3, 1, 2});
  require_gradcheck([&](const In& v) { return index_select(v[0], 1, idx); }, {x});
  require_gradcheck([](const In& v) { return index_select(v[0], -1, std::vector<std::int64_t>{4, 4, 0}); }, {x});
  require_gradcheck([](const In& v) { return index_select(v[0].transpose(0, 2), 0, std::vector<std::int64_t>{1}); }, {x});
  Generator gen(42);
  const auto gidx = randint<double>({3, 6, 2}, 4, gen);  // repeats along dim 1, smaller in dim 2
  require_gradcheck([&](const In& v) { return gather(v[0], 1, gidx); }, {x});
  const auto gidx0 = randint<double>({2, 4, 5}, 3, gen);
  require_gradcheck([&](const In& v) { return gather(v[0], 0, gidx0); }, {x});
  const auto gidx_last = randint<double>({5, 3, 2}, 4, gen);
  require_gradcheck([&](const In& v) { return gather(v[0].permute({2, 0, 1}), -1, gidx_last); }, {x});
}

TEST_CASE("one_hot values and layout", "[index]") {
  const auto labels = Tensor<float>::from({1, 2, 2}, {0, 2, 1, 2});
  const auto y = one_hot(labels, 3);
  REQUIRE(y.shape() == Shape{1, 3, 2, 2});
  REQUIRE(y.to_vector() == std::vector<float>{1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1});
  const auto last = one_hot(labels, 3, -1);
  REQUIRE(last.shape() == Shape{1, 2, 2, 3});
  REQUIRE(last.to_vector() == std::vector<float>{1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1});
  REQUIRE(one_hot(Tensor<double>::from({3}, {1, 0, 1}), -1).to_vector() == std::vector<double>{0, 1, 1, 0, 0, 1});
  REQUIRE(one_hot(Tensor<double>::scalar(2), 4, 0).to_vector() == std::vector<double>{0, 0, 1, 0});
  REQUIRE(one_hot(Tensor<double>::zeros({0, 5}), 2).shape() == Shape{0, 2, 5});
  REQUIRE_FALSE(one_hot(labels, 3).requires_grad_flag());
}

TEST_CASE("index_select and gather values", "[index]") {
  const auto x = Tensor<float>::from({2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(index_select(x, 1, std::vector<std::int64_t>{2, 0}).to_vector() == std::vector<float>{3, 1, 6, 4});
  REQUIRE(index_select(x, 0, Tensor<float>::scalar(1)).to_vector() == std::vector<float>{4, 5, 6});
  REQUIRE(index_select(x, 0, Tensor<float>::zeros({0})).shape() == Shape{0, 3});
  REQUIRE(gather(x, 1, Tensor<float>::from({2, 2}, {2, 2, 0, 1})).to_vector() == std::vector<float>{3, 3, 4, 5});
  REQUIRE(gather(x, 0, Tensor<float>::from({1, 3}, {1, 0, 1})).to_vector() == std::vector<float>{4, 2, 6});
  auto w = Tensor<double>::from({3}, {1, 2, 3}).requires_grad();
  sum(index_select(w, 0, std::vector<std::int64_t>{2, 2, 0})).backward();
  REQUIRE(w.grad().to_vector() == std::vector<double>{1, 0, 2});
}

TEMPLATE_TEST_CASE("index ops match PyTorch", "[golden][index]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("shape_ops");
  const auto idx = g.get<T>("index_select.index");
  gkd::test::check_golden_case<T>(g, "index_select", [&](const V& x) { return index_select(x[0], 1, idx); });
  gkd::test::check_golden_case<T>(g, "gather_dim1", [](const V& x) { return gather(x[0], 1, x[1]); }, {true, false});
  gkd::test::check_golden_case<T>(g, "gather_last", [](const V& x) { return gather(x[0], -1, x[1]); }, {true, false});
  gkd::test::require_close(one_hot(g.get<T>("one_hot.labels"), 4), g.get<T>("one_hot.out"), 0, "one_hot");
}

TEST_CASE("index bad input raises gkd::Error naming op and shapes", "[errors][index]") {
  const auto x = Tensor<float>::zeros({2, 3});
  REQUIRE_THROWS_WITH(one_hot(Tensor<float>::from({2}, {0, 1.5f}), 3), Catch::Contains("one_hot") && Catch::Contains("[2]") && Catch::Contains("1.5"));
  REQUIRE_THROWS_WITH(one_hot(Tensor<float>::from({2}, {0, 3}), 3), Catch::Contains("one_hot") && Catch::Contains("[2]") && Catch::Contains("3"));
  REQUIRE_THROWS_WITH(one_hot(Tensor<float>::from({2}, {0, -1}), 3), Catch::Contains("one_hot") && Catch::Contains("-1"));
  REQUIRE_THROWS_WITH(one_hot(Tensor<float>::from({2}, {0, NAN}), 3), Catch::Contains("one_hot") && Catch::Contains("non-integer"));
  REQUIRE_THROWS_WITH(one_hot(Tensor<float>::from({2}, {0, 1}), 0), Catch::Contains("one_hot") && Catch::Contains("num_classes"));
  REQUIRE_THROWS_WITH(one_hot(Tensor<float>::from({2}, {0, 1}), 2, 3), Catch::Contains("one_hot") && Catch::Contains("dim 3"));
  REQUIRE_THROWS_WITH(index_select(x, 1, std::vector<std::int64_t>{3}), Catch::Contains("index_select") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(index_select(x, 1, std::vector<std::int64_t>{-1}), Catch::Contains("index_select") && Catch::Contains("-1"));
  REQUIRE_THROWS_WITH(index_select(x, 0, Tensor<float>::zeros({1, 1})), Catch::Contains("index_select") && Catch::Contains("[1, 1]"));
  REQUIRE_THROWS_WITH(index_select(x, 0, Tensor<float>::from({1}, {0.5f})), Catch::Contains("index_select") && Catch::Contains("0.5"));
  REQUIRE_THROWS_WITH(index_select(x, 2, std::vector<std::int64_t>{0}), Catch::Contains("index_select") && Catch::Contains("dim 2"));
  REQUIRE_THROWS_WITH(gather(x, 1, Tensor<float>::zeros({2})), Catch::Contains("gather") && Catch::Contains("[2]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(gather(x, 1, Tensor<float>::zeros({3, 1})), Catch::Contains("gather") && Catch::Contains("[3, 1]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(gather(x, 1, Tensor<float>::full({2, 1}, 3)), Catch::Contains("gather") && Catch::Contains("[2, 1]") && Catch::Contains("[2, 3]"));
}

TEST_CASE("index ops give identical results for any thread count", "[parallel][index]") {
  Generator gen(43);
  const auto x = randn<float>({128, 10, 60}, gen);
  const auto labels = randint<float>({8, 70, 70}, 5, gen);
  require_thread_count_invariant([&] {
    auto xg = x.clone().requires_grad();
    auto y = index_select(xg, 1, std::vector<std::int64_t>{3, 3, 0, 9, 5});
    Generator g2(44);
    sum(mul(y, randn<float>(y.shape(), g2))).backward();
    return flat({y, xg.grad(), one_hot(labels, 5)});
  });
}
