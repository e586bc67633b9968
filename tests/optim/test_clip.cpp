// SPDX-License-Identifier: Apache-2.0
#include <limits>

#include "gkd/optim/clip.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;

namespace {

/// Three parameters carrying the golden gradients and a fourth without a gradient.
template <Real T>
std::vector<Tensor<T>> params_with_golden_grads(const gkd::test::Golden& golden) {
  std::vector<Tensor<T>> ps;
  for (int i = 0; i < 3; ++i) {
    const Tensor<T> g = golden.get<T>("clip.grad" + std::to_string(i));
    ps.push_back(Tensor<T>::zeros(g.shape()).requires_grad());
    ps.back().set_grad(g);
  }
  ps.push_back(Tensor<T>::zeros({2}).requires_grad());
  return ps;
}

}  // namespace

TEMPLATE_TEST_CASE("clip_grad_norm and clip_grad_value match PyTorch", "[golden][optim][clip]", float, double) {
  using T = TestType;
  const gkd::test::Golden golden("optim");
  // The golden file holds float64 results; float32 inputs are those rounded, hence 1e-5 there.
  const double tol = std::is_same_v<T, double> ? 1e-12 : 1e-5;
  const double inf = std::numeric_limits<double>::infinity();
  for (auto [norm_type, tag] : {std::pair{2.0, "2"}, {1.0, "1"}, {3.0, "3"}, {inf, "inf"}}) {
    for (auto [max_norm, mtag] : {std::pair{0.5, "0.5"}, {1e3, "1000"}}) {
      const std::string key = std::string("clip.norm") + tag + ".max" + mtag;
      INFO(key);
      auto ps = params_with_golden_grads<T>(golden);
      const T total = clip_grad_norm(ps, max_norm, norm_type);
      gkd::test::require_close(Tensor<T>::scalar(total), golden.get<double>(key + ".total"), tol, key + ".total");
      for (int i = 0; i < 3; ++i)
        gkd::test::require_close(ps[static_cast<std::size_t>(i)].grad(), golden.get<double>(key + ".out" + std::to_string(i)),
                                 tol, key + ".out" + std::to_string(i));
      CHECK_FALSE(ps[3].grad().defined());
    }
  }
  auto ps = params_with_golden_grads<T>(golden);
  clip_grad_value(ps, 0.7);
  for (int i = 0; i < 3; ++i)
    gkd::test::require_close(ps[static_cast<std::size_t>(i)].grad(), golden.get<double>("clip.value0.7.out" + std::to_string(i)),
                             tol, "clip_grad_value");
}

TEST_CASE("clip_grad_norm by hand: no gradients, strided gradients, non-finite norms", "[optim][clip]") {
  auto p = Tensor<double>::zeros({2, 2}).requires_grad();
  CHECK(clip_grad_norm(std::vector<Tensor<double>>{p}, 1.0) == 0.0);
  CHECK(clip_grad_norm(std::vector<Tensor<double>>{}, 1.0) == 0.0);

  // A transposed (non-contiguous) gradient is clipped in place through its strides.
  auto base = Tensor<double>::from({2, 2}, {3.0, 0.0, 4.0, 0.0});
  p.set_grad(base.transpose(0, 1));
  CHECK(clip_grad_norm(std::vector<Tensor<double>>{p}, 1.0) == 5.0);
  CHECK(base.at({0, 0}) == Approx(3.0 / (5.0 + 1e-6)));
  CHECK(base.at({1, 0}) == Approx(4.0 / (5.0 + 1e-6)));

  // Below max_norm nothing changes.
  p.set_grad(Tensor<double>::from({2, 2}, {0.1, 0.2, 0.3, 0.4}));
  clip_grad_norm(std::vector<Tensor<double>>{p}, 10.0);
  CHECK(p.grad().at({1, 1}) == 0.4);

  p.set_grad(Tensor<double>::from({2, 2}, {1.0, std::numeric_limits<double>::infinity(), 0.0, 0.0}));
  REQUIRE_THROWS_WITH(clip_grad_norm(std::vector<Tensor<double>>{p}, 1.0, 2.0, true),
                      Catch::Contains("clip_grad_norm") && Catch::Contains("inf"));
  p.set_grad(Tensor<double>::from({2, 2}, {1.0, std::nan(""), 0.0, 0.0}));
  CHECK(std::isnan(clip_grad_norm(std::vector<Tensor<double>>{p}, 1.0, std::numeric_limits<double>::infinity())));
  CHECK(std::isnan(p.grad().at({0, 0})));  // a NaN norm poisons the gradients, as in PyTorch
}

TEST_CASE("clip bad input raises gkd::Error naming the function and the values", "[errors][optim][clip]") {
  auto p = Tensor<float>::zeros({2}).requires_grad();
  const std::vector<Tensor<float>> ps{p};
  using Catch::Contains;
  REQUIRE_THROWS_WITH(clip_grad_norm(ps, -1.0), Contains("clip_grad_norm") && Contains("max_norm") && Contains("-1"));
  REQUIRE_THROWS_WITH(clip_grad_norm(ps, 1.0, 0.0), Contains("clip_grad_norm") && Contains("norm_type") && Contains("0"));
  REQUIRE_THROWS_WITH(clip_grad_norm(ps, 1.0, -2.0), Contains("clip_grad_norm") && Contains("-2"));
  REQUIRE_THROWS_WITH(clip_grad_value(ps, -0.5), Contains("clip_grad_value") && Contains("-0.5"));
}
