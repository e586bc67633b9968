// SPDX-License-Identifier: Apache-2.0
// similarity_mse (SKD) and pixel_pair_kl (CIRKD): tiled == materialised reference over a grid of
// sizes, tiles and temperatures; float64 gradcheck; stability; errors; PyTorch golden parity.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gkd/cuda/schedule.hpp"  // default_panel_rows: host code, no CUDA needed
#include "gkd/losses/pairwise_kd.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_close;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

namespace {

template <Real T>
Tensor<T> cast(const Tensor<double>& x) {
  const auto v = x.to_vector();
  return Tensor<T>::from(x.shape(), std::vector<T>(v.begin(), v.end()));
}

template <Real T>
bool all_finite(const Tensor<T>& x) {
  for (auto v : x.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

// Values that are differences of O(1) or O(1 / τ) terms rounded in double (KL and gradients of
// nearly identical or one-hot softmaxes at τ = 0.01: 1e-14 to 1e-16) are noise in both
// implementations: an absolute 1e-12 is allowed on top of the relative tolerance (relative to each
// element, floored at 1% of the largest, as require_close).
template <Real A, Real E>
void require_close_atol(const Tensor<A>& actual, const Tensor<E>& expected, double tol, const char* what,
                        double floor = 1e-2) {
  INFO(what);
  REQUIRE(actual.shape() == expected.shape());
  const auto a = actual.to_vector();
  const auto e = expected.to_vector();
  double scale = 0;
  for (auto v : e) scale = std::max(scale, std::abs(double(v)));
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("element " << i << " actual " << a[i] << " expected " << e[i]);
    REQUIRE(std::abs(double(a[i]) - double(e[i])) <= tol * std::max(std::abs(double(e[i])), floor * scale) + 1e-12);
  }
}

// Runs the tiled op (value and gradient through autograd) and the reference on the same inputs.
template <Real T, class Op, class Ref>
void compare_to_reference(const Tensor<double>& s64, const Tensor<double>& t64, Op op, Ref ref, double tol) {
  const Tensor<T> s = cast<T>(s64), t = cast<T>(t64);
  Tensor<T> sg = s.detach().requires_grad();
  Tensor<T> loss = op(sg, t);
  loss.backward();
  Tensor<T> ref_grad;
  const double expected = ref(s, t, ref_grad);
  INFO("loss " << double(loss.item()) << " reference " << expected);
  REQUIRE(std::abs(double(loss.item()) - expected) <= tol * std::abs(expected) + 1e-12);
  // float gradients are Σ_j (q − p) ŝ_j over terms that cancel (Σ_j (q − p) = 0) and are rounded in
  // float tiles: they are judged against 10% of the largest element rather than 1%
  require_close_atol(sg.grad(), ref_grad, tol, "gradient", std::is_same_v<T, float> ? 1e-1 : 1e-2);
}

}  // namespace

TEMPLATE_TEST_CASE("similarity_mse and pixel_pair_kl: tiled equals the materialised reference", "[pairwise_kd]", float,
                   double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-10;
  struct Size {
    std::int64_t b, n, cs, ct;
  };
  std::uint64_t seed = 100;
  for (const Size z : {Size{1, 1, 4, 2}, Size{1, 5, 3, 3}, Size{2, 7, 3, 5}, Size{2, 37, 8, 6}, Size{3, 12, 5, 9}}) {
    for (std::int64_t tile : {1, 5, 128}) {
      for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
        INFO("B " << z.b << " N " << z.n << " C_s " << z.cs << " C_t " << z.ct << " tile " << tile << " reduction "
                  << reduction_name(r));
        const auto s = random({z.b, z.n, z.cs}, ++seed), t = random({z.b, z.n, z.ct}, ++seed, 2.0);
        const SimilarityMseOptions mo{.eps = 1e-12, .reduction = r, .tile = tile};
        if (z.n == 1) {  // one node: both self-similarities are 1, loss and gradient are 0 up to rounding
          Tensor<T> sg = cast<T>(s).requires_grad();
          Tensor<T> l = similarity_mse(sg, cast<T>(t), mo);
          l.backward();
          REQUIRE(std::abs(double(l.item())) <= 1e-12);
          for (auto v : sg.grad().to_vector()) REQUIRE(std::abs(double(v)) <= 1e-6);
        } else {
          compare_to_reference<T>(
            s, t, [&](const Tensor<T>& a, const Tensor<T>& b) { return similarity_mse(a, b, mo); },
            [&](const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& g) { return reference::similarity_mse(a, b, mo, g); },
            tol);
        }
        for (double tau : {0.01, 0.1, 1.0, 4.0}) {
          INFO("tau " << tau);
          // float similarities carry ~6e-8 of rounding, amplified by 1 / τ in the logits: below τ = 0.1
          // the float tolerance grows as 1e-5 · 0.1 / τ (1e-4 at τ = 0.01); double stays at 1e-10
          const double ktol = std::is_same_v<T, float> ? tol * std::max(1.0, 0.1 / tau) : tol;
          const PixelPairKlOptions ko{.temperature = tau, .eps = 1e-12, .reduction = r, .tile = tile};
          compare_to_reference<T>(
              s, t, [&](const Tensor<T>& a, const Tensor<T>& b) { return pixel_pair_kl(a, b, ko); },
              [&](const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& g) { return reference::pixel_pair_kl(a, b, ko, g); },
              ktol);
        }
      }
    }
  }
}

TEST_CASE("similarity_mse and pixel_pair_kl take [N, C] as one graph", "[pairwise_kd]") {
  const auto s = random({6, 3}, 11), t = random({6, 4}, 12);
  REQUIRE(similarity_mse(s, t).item() == Approx(similarity_mse(s.reshape({1, 6, 3}), t.reshape({1, 6, 4})).item()));
  REQUIRE(pixel_pair_kl(s, t).item() == Approx(pixel_pair_kl(s.reshape({1, 6, 3}), t.reshape({1, 6, 4})).item()));
}

TEST_CASE("similarity_mse and pixel_pair_kl gradcheck", "[gradcheck][pairwise_kd]") {
  const auto s = random({2, 5, 3}, 21), t = random({2, 5, 4}, 22);
  for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
    require_gradcheck([&](const In& v) { return similarity_mse(v[0], t, {.reduction = r, .tile = 2}); }, {s});
    for (double tau : {0.5, 2.0})
      require_gradcheck([&](const In& v) { return pixel_pair_kl(v[0], t, {.temperature = tau, .reduction = r, .tile = 3}); },
                        {s});
  }
  // inside a graph: the student features come out of another op
  require_gradcheck([&](const In& v) { return similarity_mse(v[0] * 2.0, t) + pixel_pair_kl(v[0], t); }, {s});
}

TEST_CASE("similarity_mse and pixel_pair_kl are stable at tau = 0.01 and large norms", "[pairwise_kd]") {
  const auto s = random({2, 33, 6}, 31, 1e4), t = random({2, 33, 7}, 32, 1e4);
  for (double tau : {0.01, 0.05}) {
    Tensor<float> sg = cast<float>(s).requires_grad();
    Tensor<float> l = pixel_pair_kl(sg, cast<float>(t), {.temperature = tau, .tile = 8});
    l.backward();
    REQUIRE(std::isfinite(l.item()));
    REQUIRE(all_finite(sg.grad()));
    Tensor<double> g;
    const double expected = reference::pixel_pair_kl(s, t, {.temperature = tau}, g);
    REQUIRE(std::abs(double(l.item()) - expected) <= 1e-4 * expected);
  }
  Tensor<float> sg = cast<float>(s).requires_grad();
  Tensor<float> l = similarity_mse(sg, cast<float>(t), {.tile = 8});
  l.backward();
  REQUIRE(std::isfinite(l.item()));
  REQUIRE(all_finite(sg.grad()));
}

TEST_CASE("similarity_mse and pixel_pair_kl are NaN, not finite, where a feature is NaN", "[pairwise_kd]") {
  const auto s = cast<float>(random({1, 300, 16}, 61)), t = cast<float>(random({1, 300, 24}, 62));
  for (bool in_teacher : {false, true}) {
    INFO((in_teacher ? "teacher" : "student"));
    auto sv = s.to_vector(), tv = t.to_vector();
    (in_teacher ? tv : sv)[7 * (in_teacher ? 24 : 16) + 2] = std::numeric_limits<float>::quiet_NaN();
    const auto sn = Tensor<float>::from({1, 300, 16}, sv), tn = Tensor<float>::from({1, 300, 24}, tv);
    REQUIRE(std::isnan(similarity_mse(sn, tn).item()));
    REQUIRE(std::isnan(pixel_pair_kl(sn, tn).item()));
  }
}

TEST_CASE("similarity_mse and pixel_pair_kl are thread-count invariant", "[pairwise_kd]") {
  const auto s = cast<float>(random({2, 300, 16}, 41)), t = cast<float>(random({2, 300, 24}, 42));
  gkd::test::require_thread_count_invariant([&] {
    Tensor<float> sg = s.detach().requires_grad();
    Tensor<float> l = similarity_mse(sg, t, {.tile = 64}) + pixel_pair_kl(sg, t, {.temperature = 0.2, .tile = 64});
    l.backward();
    return gkd::test::flat({l, sg.grad()});
  });
}

TEST_CASE("similarity_mse and pixel_pair_kl reject bad shapes and options", "[pairwise_kd]") {
  const auto s = random({2, 5, 3}, 51), t = random({2, 5, 4}, 52);
  REQUIRE_THROWS_AS(similarity_mse(s, random({2, 6, 4}, 53)), Error);
  REQUIRE_THROWS_AS(similarity_mse(s, random({3, 5, 4}, 53)), Error);
  REQUIRE_THROWS_AS(pixel_pair_kl(random({5}, 54), random({5}, 55)), Error);
  REQUIRE_THROWS_AS(pixel_pair_kl(s, random({5, 4}, 55)), Error);
  REQUIRE_THROWS_AS(similarity_mse(random({2, 0, 3}, 56), random({2, 0, 4}, 56)), Error);
  REQUIRE_THROWS_AS(similarity_mse(s, t, {.reduction = Reduction::None}), Error);
  REQUIRE_THROWS_AS(similarity_mse(s, t, {.tile = 0}), Error);
  REQUIRE_THROWS_AS(similarity_mse(s, t, {.eps = -1.0}), Error);
  REQUIRE_THROWS_AS(pixel_pair_kl(s, t, {.temperature = 0.0}), Error);
  REQUIRE_THROWS_AS(pixel_pair_kl(s, t, {.temperature = -1.0}), Error);
  REQUIRE_THROWS_AS(pixel_pair_kl(s, t, {.temperature = INFINITY}), Error);
  REQUIRE_THROWS_WITH(pixel_pair_kl(s, t, {.temperature = 0.0}), Catch::Contains("pixel_pair_kl") && Catch::Contains("temperature"));
}

TEST_CASE("similarity_mse and pixel_pair_kl match PyTorch", "[pairwise_kd][golden]") {
  const gkd::test::Golden g("pairwise_kd");
  auto check = [&](const std::string& name, auto op) {
    for (std::string dtype : {"float64", "float32"}) {
      const std::string tag = name + "." + dtype;
      INFO(tag);
      const double tol = dtype == "float64" ? 1e-10 : 2e-5;
      const auto s = g.get<double>(tag + ".in0"), t = g.get<double>(tag + ".in1");
      const double gout = g.scalar(tag + ".gout");
      if (dtype == "float64") {
        Tensor<double> sg = s.detach().requires_grad();
        Tensor<double> l = op(sg, t);
        (l * gout).backward();
        require_close(l, g.get<double>(tag + ".out"), tol, "loss");
        require_close(sg.grad(), g.get<double>(tag + ".grad0"), tol, "grad");
      } else {
        Tensor<float> sg = cast<float>(s).requires_grad();
        Tensor<float> l = op(sg, cast<float>(t));
        (l * float(gout)).backward();
        require_close(l, g.get<float>(tag + ".out"), tol, "loss");
        require_close(sg.grad(), g.get<float>(tag + ".grad0"), tol, "grad");
      }
    }
  };
  auto mse = [](Reduction r) { return [r](const auto& a, const auto& b) { return similarity_mse(a, b, {.reduction = r, .tile = 3}); }; };
  auto kl = [](double tau, Reduction r) {
    return [tau, r](const auto& a, const auto& b) { return pixel_pair_kl(a, b, {.temperature = tau, .reduction = r, .tile = 4}); };
  };
  check("skd_mean", mse(Reduction::Mean));
  check("skd_sum", mse(Reduction::Sum));
  check("skd_two_nodes", mse(Reduction::Mean));
  check("cirkd_mean_t0.5", kl(0.5, Reduction::Mean));
  check("cirkd_sum_t0.1", kl(0.1, Reduction::Sum));
  check("cirkd_t4", kl(4.0, Reduction::Mean));
}

TEST_CASE("the GPU Panels schedule's default height is the tallest power of two whose panels fit the budget",
          "[pairwise_kd][panels]") {
  using gkd::cuda::default_panel_rows;
  using gkd::cuda::kPanelBudgetBytes;
  STATIC_REQUIRE(default_panel_rows(16384, 2) == 2048);
  STATIC_REQUIRE(default_panel_rows(65536, 2) == 512);
  STATIC_REQUIRE(default_panel_rows(262144, 2) == 512);  // never below 512, even over the budget
  for (const std::int64_t floats : {32, 1024, 4096, 5000, 16384, 65536})
    for (const std::int64_t panels : {1, 2}) {
      const std::int64_t rows = default_panel_rows(floats, panels), bytes = rows * floats * panels * 4;
      INFO("row floats " << floats << " panels " << panels << " rows " << rows);
      REQUIRE((rows >= 512 && (rows & (rows - 1)) == 0));
      REQUIRE(bytes <= kPanelBudgetBytes);
      REQUIRE(2 * bytes > kPanelBudgetBytes);
    }
}
