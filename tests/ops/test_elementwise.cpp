// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("binary ops broadcast and gradcheck", "[gradcheck][elementwise]") {
  const auto a = random({2, 3, 4}, 1), b = random({3, 1}, 2);
  const auto positive = add(abs(random({4}, 3)), 0.5);
  require_gradcheck([](const In& x) { return add(x[0], x[1]); }, {a, b});
  require_gradcheck([](const In& x) { return sub(x[0], x[1]); }, {a, b});
  require_gradcheck([](const In& x) { return mul(x[0], x[1]); }, {a, b});
  require_gradcheck([](const In& x) { return div(x[0], x[1]); }, {a, positive});
  require_gradcheck([](const In& x) { return pow(x[0], x[1]); }, {add(abs(a), 0.5), random({4}, 4)});
  require_gradcheck([](const In& x) { return where(gt(x[0], Tensor<double>::scalar(0)), x[0], x[1]); }, {a, b});
}

TEST_CASE("broadcasting binary ops agree with element-by-element indexing on strided layouts", "[elementwise]") {
  // Every kind of run: unit stride on both sides, a broadcast scalar on either side, and strided
  // (transposed, sliced) operands, in shapes whose dims merge partly.
  const auto base = random({4, 5, 6}, 21);
  const std::vector<Tensor<double>> lefts = {base, base.transpose(0, 2).transpose(0, 1), base.slice(2, 0, 6, 2),
                                             base.permute({0, 2, 1})};
  for (const auto& a : lefts) {
    const std::int64_t d0 = a.shape()[0], d1 = a.shape()[1], d2 = a.shape()[2];
    const std::vector<Tensor<double>> rights = {
        random({d2}, 22), random({d1, 1}, 23), random({d0, 1, 1}, 24), random({1}, 25),
        random({d2, d1}, 26).transpose(0, 1), random({d0, d1, d2}, 27), random({d0, 1, d2}, 28)};
    for (const auto& b : rights) {
      INFO("a " << to_string(a.shape()) << (a.is_contiguous() ? "" : " strided") << ", b " << to_string(b.shape())
                << (b.is_contiguous() ? "" : " strided"));
      const auto ab = mul(a, b), ba = sub(b, a);
      REQUIRE(ab.shape() == a.shape());
      for (std::int64_t i = 0; i < d0; ++i)
        for (std::int64_t j = 0; j < d1; ++j)
          for (std::int64_t k = 0; k < d2; ++k) {
            const std::int64_t bi = b.dim() == 3 && b.shape()[0] > 1 ? i : 0;
            const std::int64_t bj = b.dim() >= 2 && b.shape()[b.dim() - 2] > 1 ? j : 0;
            const std::int64_t bk = b.shape().back() > 1 ? k : 0;
            const double bv = b.dim() == 1 ? b.at({bk}) : b.dim() == 2 ? b.at({bj, bk}) : b.at({bi, bj, bk});
            REQUIRE(ab.at({i, j, k}) == a.at({i, j, k}) * bv);
            REQUIRE(ba.at({i, j, k}) == bv - a.at({i, j, k}));
          }
    }
  }
}

TEST_CASE("unary ops and activations gradcheck", "[gradcheck][elementwise]") {
  const auto x = random({3, 5}, 5, 2.0);
  const auto pos = add(abs(x), 0.1);
  require_gradcheck([](const In& v) { return neg(v[0]); }, {x});
  require_gradcheck([](const In& v) { return v[0] * 3.0 + 1.0; }, {x});
  require_gradcheck([](const In& v) { return pow(v[0], 3.0); }, {x});
  require_gradcheck([](const In& v) { return exp(v[0]); }, {x});
  require_gradcheck([](const In& v) { return log(v[0]); }, {pos});
  require_gradcheck([](const In& v) { return sqrt(v[0]); }, {pos});
  require_gradcheck([](const In& v) { return abs(v[0]); }, {x});
  require_gradcheck([](const In& v) { return clamp(v[0], -1.0, 1.5); }, {x});
  require_gradcheck([](const In& v) { return relu(v[0]); }, {x});
  require_gradcheck([](const In& v) { return relu6(v[0] * 4.0); }, {x});
  require_gradcheck([](const In& v) { return leaky_relu(v[0], 0.2); }, {x});
  require_gradcheck([](const In& v) { return gelu(v[0]); }, {x});
  require_gradcheck([](const In& v) { return gelu(v[0], GeluApproximation::Tanh); }, {x});
  require_gradcheck([](const In& v) { return sigmoid(v[0]); }, {x});
  require_gradcheck([](const In& v) { return tanh(v[0]); }, {x});
  require_gradcheck([](const In& v) { return softplus(v[0], 2.0, 5.0); }, {x});
}

TEMPLATE_TEST_CASE("elementwise ops match PyTorch", "[golden][elementwise]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("elementwise");
  gkd::test::check_golden_case<T>(g, "add", [](const V& x) { return add(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "sub", [](const V& x) { return sub(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "mul", [](const V& x) { return mul(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "div", [](const V& x) { return div(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "neg", [](const V& x) { return neg(x[0]); });
  gkd::test::check_golden_case<T>(g, "pow_scalar", [](const V& x) { return pow(x[0], T(3)); });
  gkd::test::check_golden_case<T>(g, "pow", [](const V& x) { return pow(x[0], x[1]); });
  gkd::test::check_golden_case<T>(g, "exp", [](const V& x) { return exp(x[0]); });
  gkd::test::check_golden_case<T>(g, "log", [](const V& x) { return log(x[0]); });
  gkd::test::check_golden_case<T>(g, "sqrt", [](const V& x) { return sqrt(x[0]); });
  gkd::test::check_golden_case<T>(g, "abs", [](const V& x) { return abs(x[0]); });
  gkd::test::check_golden_case<T>(g, "clamp", [](const V& x) { return clamp(x[0], T(-1), T(1.5)); });
  gkd::test::check_golden_case<T>(g, "relu", [](const V& x) { return relu(x[0]); });
  gkd::test::check_golden_case<T>(g, "relu6", [](const V& x) { return relu6(x[0]); });
  gkd::test::check_golden_case<T>(g, "leaky_relu", [](const V& x) { return leaky_relu(x[0], T(0.1)); });
  gkd::test::check_golden_case<T>(g, "gelu", [](const V& x) { return gelu(x[0]); });
  gkd::test::check_golden_case<T>(g, "gelu_tanh", [](const V& x) { return gelu(x[0], GeluApproximation::Tanh); });
  gkd::test::check_golden_case<T>(g, "sigmoid", [](const V& x) { return sigmoid(x[0]); });
  gkd::test::check_golden_case<T>(g, "tanh", [](const V& x) { return tanh(x[0]); });
  gkd::test::check_golden_case<T>(g, "softplus", [](const V& x) { return softplus(x[0], T(2), T(5)); });
  const auto cond = g.get<T>("where.cond");
  gkd::test::check_golden_case<T>(g, "where", [&](const V& x) { return where(cond, x[0], x[1]); });
}

TEST_CASE("elementwise bad input raises gkd::Error naming op and shapes", "[errors][elementwise]") {
  const auto a = Tensor<float>::zeros({2, 3}), b = Tensor<float>::zeros({4});
  REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  REQUIRE_THROWS_AS(mul(a, b), gkd::Error);
  REQUIRE_THROWS_WITH(clamp(a, 2.f, 1.f), Catch::Contains("clamp"));
  REQUIRE_THROWS_WITH(relu(Tensor<float>()), Catch::Contains("relu") && Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(where(Tensor<float>::zeros({5}), a, a), Catch::Contains("where"));
}

TEST_CASE("empty tensors flow through elementwise ops", "[elementwise]") {
  auto e = Tensor<double>::zeros({0, 3}).requires_grad();
  auto y = sum(relu(e) * 2.0);
  REQUIRE(y.item() == 0.0);
  y.backward();
  REQUIRE(e.grad().shape() == Shape{0, 3});
}
