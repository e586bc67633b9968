// SPDX-License-Identifier: Apache-2.0
#include "gkd/ops/dropout.hpp"

#include "support/check.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("dropout gradcheck with a fixed mask", "[gradcheck][dropout]") {
  // Each evaluation copies the same generator state, so every call draws the same mask.
  const Generator base(7);
  require_gradcheck([&](const In& v) { Generator g = base; return dropout(v[0], 0.4, true, g); },
                    {random({3, 4, 5}, 1)});
  require_gradcheck([&](const In& v) { Generator g = base; return dropout2d(v[0], 0.5, true, g); },
                    {random({2, 5, 3, 2}, 2)});
  require_gradcheck([&](const In& v) { Generator g = base; return dropout(v[0].transpose(0, 1), 0.2, true, g); },
                    {random({4, 3}, 3)});
}

TEST_CASE("dropout zeroes the expected fraction and scales survivors", "[dropout]") {
  Generator gen(1);
  const double p = 0.3;
  const auto x = Tensor<float>::ones({200000});
  const auto y = dropout(x, p, true, gen);
  std::int64_t zeros = 0;
  double total = 0;
  for (float v : y.to_vector()) {
    if (v == 0.f) ++zeros;
    else REQUIRE(v == static_cast<float>(1.0 / (1.0 - p)));
    total += v;
  }
  const double frac = static_cast<double>(zeros) / 200000.0;
  REQUIRE(std::abs(frac - p) < 0.005);              // ~5 standard deviations
  REQUIRE(std::abs(total / 200000.0 - 1.0) < 0.01);  // the scaling keeps the mean
}

TEST_CASE("dropout2d drops whole channels", "[dropout]") {
  Generator gen(2);
  const double p = 0.25;
  const auto x = add(Tensor<double>::ones({16, 64, 3, 4}), 1.0);  // all 2
  const auto y = dropout2d(x, p, true, gen);
  std::int64_t dropped = 0;
  for (std::int64_t n = 0; n < 16; ++n)
    for (std::int64_t c = 0; c < 64; ++c) {
      const double first = y.at({n, c, 0, 0});
      REQUIRE((first == 0.0 || first == 2.0 / (1.0 - p)));
      for (std::int64_t i = 0; i < 3; ++i)
        for (std::int64_t j = 0; j < 4; ++j) REQUIRE(y.at({n, c, i, j}) == first);
      dropped += first == 0.0;
    }
  REQUIRE(std::abs(static_cast<double>(dropped) / 1024.0 - p) < 0.07);  // ~5 standard deviations
}

TEST_CASE("dropout is the identity in evaluation or with p = 0, zero with p = 1", "[dropout]") {
  Generator gen(3);
  const auto x = random({4, 3, 2, 2}, 4);
  REQUIRE(dropout(x, 0.5, false, gen).data() == x.data());
  REQUIRE(dropout2d(x, 0.5, false, gen).data() == x.data());
  REQUIRE(dropout(x, 0.0, true, gen).data() == x.data());
  REQUIRE(dropout2d(x, 0.0, true, gen).data() == x.data());
  auto leaf = random({5, 6}, 5).requires_grad();
  auto y = dropout(leaf, 1.0, true, gen);
  for (double v : y.to_vector()) REQUIRE(v == 0.0);
  sum(y).backward();
  for (double v : leaf.grad().to_vector()) REQUIRE(v == 0.0);
}

TEST_CASE("dropout masks are reproducible from the seed and the gradient reuses the mask", "[dropout]") {
  const auto x = random({6, 7}, 6);
  Generator a(11), b(11), c(12);
  const auto ya = dropout(x, 0.5, true, a), yb = dropout(x, 0.5, true, b), yc = dropout(x, 0.5, true, c);
  REQUIRE(ya.to_vector() == yb.to_vector());
  REQUIRE(ya.to_vector() != yc.to_vector());
  REQUIRE(dropout(x, 0.5, true, a).to_vector() != ya.to_vector());  // the generator advanced

  auto leaf = x.detach().clone().requires_grad();
  Generator d(11);
  const auto y = dropout(leaf, 0.5, true, d);
  sum(y).backward();
  const auto g = leaf.grad().to_vector(), out = y.to_vector(), in = x.to_vector();
  for (std::size_t i = 0; i < g.size(); ++i) REQUIRE(g[i] * in[i] == Approx(out[i]));
}

TEST_CASE("dropout bad input raises gkd::Error naming op and shapes", "[errors][dropout]") {
  using F = Tensor<float>;
  using Catch::Contains;
  Generator gen(0);
  const auto x = F::zeros({2, 3, 4, 4});
  REQUIRE_THROWS_WITH(dropout(x, -0.1, true, gen), Contains("dropout") && Contains("[2, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(dropout(x, 1.5, false, gen), Contains("dropout") && Contains("1.5"));
  REQUIRE_THROWS_WITH(dropout(F(), 0.5, true, gen), Contains("dropout") && Contains("undefined"));
  REQUIRE_THROWS_WITH(dropout2d(F::zeros({3, 4, 4}), 0.5, true, gen),
                      Contains("dropout2d") && Contains("[3, 4, 4]") && Contains("4-D"));
  REQUIRE_THROWS_WITH(dropout2d(x, 2.0, true, gen), Contains("dropout2d") && Contains("[2, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(dropout2d(F(), 0.5, true, gen), Contains("dropout2d") && Contains("undefined"));
}
