// SPDX-License-Identifier: Apache-2.0
// cross_recon_kd (DICD): fused == the unfused distillation_kl composition over sizes, classes,
// temperatures and reductions; float64 gradcheck; stability at logits ±1e4; errors; PyTorch golden.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gkd/losses/cross_recon_kd.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_close;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

namespace {
// Values that are differences of O(1) or O(1 / τ) terms rounded in double (KL and gradients of
// nearly identical or one-hot softmaxes at τ = 0.01: 1e-14 to 1e-16) are noise in both
// implementations: an absolute 1e-12 is allowed on top of the relative tolerance (relative to each
// element, floored at 1% of the largest, as require_close). In float32 both implementations compute
// in float32, and a gradient τ (q − p) of close probabilities carries a few float32 roundings of p and
// q: 4 float32 epsilons of the largest element are allowed on top.
template <Real A, Real E>
void require_close_atol(const Tensor<A>& actual, const Tensor<E>& expected, double tol, const char* what) {
  INFO(what);
  REQUIRE(actual.shape() == expected.shape());
  const auto a = actual.to_vector();
  const auto e = expected.to_vector();
  double scale = 0;
  for (auto v : e) scale = std::max(scale, std::abs(double(v)));
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("element " << i << " actual " << a[i] << " expected " << e[i]);
    const double float_noise = std::is_same_v<A, float> ? 4 * double(std::numeric_limits<float>::epsilon()) * scale : 0.0;
    REQUIRE(std::abs(double(a[i]) - double(e[i])) <=
            tol * std::max(std::abs(double(e[i])), 1e-2 * scale) + float_noise + 1e-12);
  }
}

template <Real T>
Tensor<T> cast(const Tensor<double>& x) {
  const auto v = x.to_vector();
  return Tensor<T>::from(x.shape(), std::vector<T>(v.begin(), v.end()));
}
}  // namespace

TEMPLATE_TEST_CASE("cross_recon_kd equals the unfused distillation_kl pair", "[cross_recon_kd]", float, double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-10;
  std::uint64_t seed = 300;
  for (const Shape& shape : {Shape{1, 1, 1, 1}, Shape{1, 2, 1, 1}, Shape{2, 2, 5, 7}, Shape{3, 4, 17, 9}, Shape{2, 3, 300},
                            Shape{2, 5}}) {
    for (double tau : {0.01, 0.5, 1.0, 4.0}) {
      for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        INFO("shape " << to_string(shape) << " tau " << tau << " reduction " << reduction_name(r));
        const auto t = cast<T>(random(shape, ++seed, 3.0));
        Tensor<T> x1 = cast<T>(random(shape, ++seed, 3.0)).requires_grad(), x2 = cast<T>(random(shape, ++seed)).requires_grad();
        Tensor<T> r1 = x1.detach().requires_grad(), r2 = x2.detach().requires_grad();
        const CrossReconKdOptions o{.temperature = tau, .reduction = r};
        Tensor<T> fused = cross_recon_kd(t, x1, x2, o), ref = reference::cross_recon_kd(t, r1, r2, o);
        require_close_atol(fused, ref, tol, "loss");
        const Tensor<T> gout = cast<T>(random(fused.shape(), ++seed));
        gkd::sum(fused * gout).backward();
        gkd::sum(ref * gout).backward();
        require_close_atol(x1.grad(), r1.grad(), tol, "grad cross1");
        require_close_atol(x2.grad(), r2.grad(), tol, "grad cross2");
      }
    }
  }
}

TEST_CASE("cross_recon_kd gradcheck", "[gradcheck][cross_recon_kd]") {
  const auto t = random({2, 3, 2, 5}, 61, 2.0), x1 = random({2, 3, 2, 5}, 62, 2.0), x2 = random({2, 3, 2, 5}, 63);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    for (double tau : {1.0, 4.0})
      require_gradcheck([&](const In& v) { return cross_recon_kd(t, v[0], v[1], {.temperature = tau, .reduction = r}); },
                        {x1, x2});
  require_gradcheck([&](const In& v) { return cross_recon_kd(t, v[0] * 3.0, v[0], {.temperature = 2.0}); }, {x1});
}

TEST_CASE("cross_recon_kd is stable for logits of +-1e4 and tau = 0.01", "[cross_recon_kd]") {
  const Shape shape{2, 2, 8, 8};
  const auto t64 = random(shape, 71, 1e4), a64 = random(shape, 72, 1e4), b64 = random(shape, 73, 1e4);
  for (double tau : {0.01, 1.0, 4.0}) {
    Tensor<float> x1 = cast<float>(a64).requires_grad(), x2 = cast<float>(b64).requires_grad();
    Tensor<float> l = cross_recon_kd(cast<float>(t64), x1, x2, {.temperature = tau});
    l.backward();
    REQUIRE(std::isfinite(l.item()));
    for (auto v : x1.grad().to_vector()) REQUIRE(std::isfinite(v));
    const double expected = reference::cross_recon_kd(t64, a64, b64, {.temperature = tau}).item();
    REQUIRE(std::abs(double(l.item()) - expected) <= 1e-5 * expected);
  }
}

TEST_CASE("cross_recon_kd rejects bad shapes and temperatures", "[cross_recon_kd]") {
  const auto t = random({2, 3, 4}, 81), x = random({2, 3, 4}, 82);
  REQUIRE_THROWS_AS(cross_recon_kd(t, x, random({2, 3, 5}, 83)), Error);
  REQUIRE_THROWS_AS(cross_recon_kd(t, random({2, 4, 4}, 83), x), Error);
  REQUIRE_THROWS_AS(cross_recon_kd(random({3}, 84), random({3}, 84), random({3}, 84)), Error);
  REQUIRE_THROWS_AS(cross_recon_kd(random({2, 0, 4}, 85), random({2, 0, 4}, 85), random({2, 0, 4}, 85)), Error);
  REQUIRE_THROWS_AS(cross_recon_kd(t, x, x, {.temperature = 0.0}), Error);
  REQUIRE_THROWS_WITH(cross_recon_kd(t, x, x, {.temperature = NAN}), Catch::Contains("cross_recon_kd") && Catch::Contains("temperature"));
}

TEST_CASE("cross_recon_kd matches PyTorch", "[cross_recon_kd][golden]") {
  const gkd::test::Golden g("pairwise_kd");
  struct Case {
    const char* name;
    double tau;
    Reduction r;
  };
  for (const Case c : {Case{"dicd_mean_t2", 2.0, Reduction::Mean}, Case{"dicd_sum_t1", 1.0, Reduction::Sum},
                       Case{"dicd_none_t4", 4.0, Reduction::None}}) {
    for (std::string dtype : {"float64", "float32"}) {
      const std::string tag = std::string(c.name) + "." + dtype;
      INFO(tag);
      const double tol = dtype == "float64" ? 1e-10 : 2e-5;
      auto run = [&](auto zero) {
        using T = decltype(zero);
        Tensor<T> x1 = g.get<T>(tag + ".in1").requires_grad(), x2 = g.get<T>(tag + ".in2").requires_grad();
        Tensor<T> l = cross_recon_kd(g.get<T>(tag + ".in0"), x1, x2, {.temperature = c.tau, .reduction = c.r});
        gkd::sum(l * g.get<T>(tag + ".gout")).backward();
        require_close(l, g.get<T>(tag + ".out"), tol, "loss");
        require_close(x1.grad(), g.get<T>(tag + ".grad1"), tol, "grad1");
        require_close(x2.grad(), g.get<T>(tag + ".grad2"), tol, "grad2");
      };
      if (dtype == "float64") run(0.0);
      else run(0.0f);
    }
  }
}
