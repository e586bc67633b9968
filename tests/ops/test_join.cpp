// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/ops/join.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::flat;
using gkd::test::require_gradcheck;
using gkd::test::require_thread_count_invariant;
using In = std::vector<Tensor<double>>;

TEST_CASE("concat, stack and split gradcheck", "[gradcheck][join]") {
  const auto a = random({2, 3, 4}, 1), b = random({2, 1, 4}, 2), c = random({2, 2, 4}, 3);
  require_gradcheck([](const In& x) { return concat(x, 1); }, {a, b, c});
  require_gradcheck([](const In& x) { return concat(x, -1); }, {random({3, 2}, 4), random({3, 5}, 5)});
  require_gradcheck([](const In& x) { return concat(x, 0); }, {random({2, 3}, 6), random({1, 3}, 7)});
  // a non-contiguous input and one used twice
  require_gradcheck([](const In& x) { return concat({x[0].transpose(0, 1), x[1], x[0].transpose(0, 1)}, 0); },
                    {random({3, 2}, 8), random({1, 3}, 9)});
  require_gradcheck([](const In& x) { return stack(x, 0); }, {random({2, 3}, 10), random({2, 3}, 11)});
  require_gradcheck([](const In& x) { return stack(x, 1); }, {a, a, a});
  require_gradcheck([](const In& x) { return stack(x, -1); }, {random({2, 3}, 12), random({2, 3}, 13)});
  require_gradcheck(
      [](const In& x) {
        auto parts = split(x[0], std::vector<std::int64_t>{1, 2}, 1);
        return concat({mul(parts[1], 2.0), parts[0]}, 1);
      },
      {a});
  require_gradcheck(
      [](const In& x) {
        auto parts = split(x[0], 3, -1);  // chunks of 3, 1
        return stack({exp(parts[1]), parts[1]}, 0);
      },
      {a});
}

TEST_CASE("split and chunk follow torch.split / torch.chunk", "[join]") {
  const auto x = Tensor<double>::arange(7).reshape({7, 1});
  auto parts = split(x, 3);
  REQUIRE(parts.size() == 3);
  REQUIRE(parts[2].shape() == Shape{1, 1});
  REQUIRE(parts[1].to_vector() == std::vector<double>{3, 4, 5});
  REQUIRE(parts[1].storage() == x.storage());  // views, not copies
  auto sized = split(x, {2, 0, 5});
  REQUIRE(sized.size() == 3);
  REQUIRE(sized[1].numel() == 0);
  REQUIRE(sized[2].to_vector() == std::vector<double>{2, 3, 4, 5, 6});
  REQUIRE(chunk(x, 3).size() == 3);   // sizes 3, 3, 1
  REQUIRE(chunk(x, 4).size() == 4);   // sizes 2, 2, 2, 1
  REQUIRE(chunk(Tensor<double>::arange(6), 4).size() == 3);  // sizes 2, 2, 2 (fewer than asked)
  REQUIRE(split(Tensor<double>::zeros({0}), 2).size() == 1);
  REQUIRE(concat(parts, 0).to_vector() == x.to_vector());
}

TEST_CASE("concat and stack values", "[join]") {
  const auto a = Tensor<float>::from({2, 2}, {1, 2, 3, 4}), b = Tensor<float>::from({2, 1}, {5, 6});
  REQUIRE(concat({a, b}, 1).to_vector() == std::vector<float>{1, 2, 5, 3, 4, 6});
  REQUIRE(concat({a, Tensor<float>::zeros({0, 2})}, 0).to_vector() == a.to_vector());
  const auto s = stack({a, a * 2.f}, 1);
  REQUIRE(s.shape() == Shape{2, 2, 2});
  REQUIRE(s.to_vector() == std::vector<float>{1, 2, 2, 4, 3, 4, 6, 8});
  REQUIRE(stack({Tensor<float>::scalar(1), Tensor<float>::scalar(2)}).to_vector() == std::vector<float>{1, 2});
  REQUIRE_FALSE(concat({a, b}, 1).requires_grad_flag());
  REQUIRE(concat({a.clone().requires_grad(), b}, 1).grad_fn_name() == "concat");
}

TEMPLATE_TEST_CASE("join ops match PyTorch", "[golden][join]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("shape_ops");
  gkd::test::check_golden_case<T>(g, "concat_dim1", [](const V& x) { return concat(x, 1); });
  gkd::test::check_golden_case<T>(g, "concat_last", [](const V& x) { return concat(x, -1); });
  gkd::test::check_golden_case<T>(g, "stack_dim0", [](const V& x) { return stack(x, 0); });
  gkd::test::check_golden_case<T>(g, "stack_dim2", [](const V& x) { return stack(x, 2); });
  gkd::test::check_golden_case<T>(g, "split_sizes", [](const V& x) {
    auto p = split(x[0], std::vector<std::int64_t>{1, 3, 1}, 2);
    return concat({mul(p[2], T(3)), p[0], exp(p[1])}, 2);
  });
  gkd::test::check_golden_case<T>(g, "split_size", [](const V& x) {
    auto p = split(x[0], 2, 1);
    return stack({p[0], mul(p[1], p[1])}, 0);
  });
}

TEST_CASE("join bad input raises gkd::Error naming op and shapes", "[errors][join]") {
  const auto a = Tensor<float>::zeros({2, 3}), b = Tensor<float>::zeros({4, 2});
  REQUIRE_THROWS_WITH(concat(std::vector<Tensor<float>>{}, 0), Catch::Contains("concat") && Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(concat({a, b}, 0), Catch::Contains("concat") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 2]"));
  REQUIRE_THROWS_WITH(concat({a, Tensor<float>::zeros({2, 3, 1})}, 0), Catch::Contains("concat") && Catch::Contains("[2, 3, 1]"));
  REQUIRE_THROWS_WITH(concat({a, a}, 2), Catch::Contains("concat") && Catch::Contains("dim 2"));
  REQUIRE_THROWS_WITH(concat({Tensor<float>::scalar(1)}, 0), Catch::Contains("concat") && Catch::Contains("0-d"));
  REQUIRE_THROWS_WITH(stack(std::vector<Tensor<float>>{}), Catch::Contains("stack") && Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(stack({a, b}), Catch::Contains("stack") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 2]"));
  REQUIRE_THROWS_WITH(stack({a, a}, 3), Catch::Contains("stack"));
  REQUIRE_THROWS_WITH(split(a, {1, 1}, 1), Catch::Contains("split") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(split(a, {4, -1}, 1), Catch::Contains("split") && Catch::Contains("negative"));
  REQUIRE_THROWS_WITH(split(a, 0, 1), Catch::Contains("split") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(chunk(a, 0, 1), Catch::Contains("chunk") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(concat({a, Tensor<float>()}, 0), Catch::Contains("concat") && Catch::Contains("undefined"));
}

TEST_CASE("concat and stack give identical results for any thread count", "[parallel][join]") {
  Generator gen(14);
  const auto a = randn<float>({64, 3, 30, 20}, gen), b = randn<float>({64, 2, 30, 20}, gen);
  require_thread_count_invariant([&] {
    auto ag = a.clone().requires_grad(), bg = b.clone().requires_grad();
    auto y = concat({ag, bg}, 1);
    auto s = stack({ag, ag}, 1);
    Generator g2(15);
    add(sum(mul(y, randn<float>(y.shape(), g2))), sum(mul(s, randn<float>(s.shape(), g2)))).backward();
    return flat({y, s, ag.grad(), bg.grad()});
  });
}
