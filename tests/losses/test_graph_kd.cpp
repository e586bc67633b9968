// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/losses/graph_kd.hpp"

#include <limits>

#if defined(GKD_TEST_REQUIRES_AVX2_SGEMM) && (!defined(GKD_SGEMM) || defined(__AVX512F__))
#error "The AVX2 build of this test must compile gkd's AVX2 GEMM kernel (gkd/ops/gemm.hpp)."
#endif

using namespace gkd;
using gkd::test::random;
using gkd::test::require_close;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

namespace {

struct Case {
  std::int64_t n, cs, ct;
  GraphMask mask;
};

/// require_close, except where every expected element is zero because each row's terms cancel exactly
/// (rows with one edge: both softmaxes are 1, so q − p = 0): there the result holds the rounding of the
/// cancelled terms, and is judged against their size `unit` (w / τ / ‖x‖) instead of against zero.
template <Real A>
void require_close_or_cancelled(const Tensor<A>& actual, const Tensor<double>& expected, double tol, double unit,
                                const std::string& what) {
  double largest = 0;
  for (double v : expected.to_vector()) largest = std::max(largest, std::abs(v));
  if (largest > 0) return require_close(actual, expected, tol, what);
  INFO(what << ": every term cancels; judged against " << unit);
  for (auto v : actual.to_vector()) REQUIRE(std::abs(double(v)) <= tol * unit);
}

/// Tiled op (autodiff, reduction None with a random upstream gradient, and Mean) against the naive
/// materialised reference, values and gradients.
template <Real T>
void check_against_reference(const Case& c, double tau, std::int64_t tile, bool infonce, double tol,
                             double scale = 1.0, bool fast = false) {
  INFO("N " << c.n << " C_s " << c.cs << " C_t " << c.ct << " mask " << graph_mask_name(c.mask.kind) << " group "
            << c.mask.group_size << " tau " << tau << " tile " << tile << (infonce ? " infonce" : " kl"));
  const auto s = random<T>({c.n, c.cs}, 1000 + std::uint64_t(c.n * 7 + c.cs), T(scale));
  const auto t = random<T>({c.n, c.ct}, 2000 + std::uint64_t(c.n * 5 + c.ct), T(scale));
  const auto gout = random<double>({c.n}, 3000 + std::uint64_t(c.n));
  GraphKDOptions o;
  o.temperature = tau;
  o.mask = c.mask;
  o.tile = tile;
  o.reduction = Reduction::None;
  o.fast_float_tiles = fast;
  auto x = s.clone().requires_grad();
  auto loss = infonce ? graph_infonce_loss(x, t, o) : graph_kd_loss(x, t, o);
  std::vector<T> gv;
  for (double v : gout.to_vector()) gv.push_back(static_cast<T>(v));
  loss.backward(Tensor<T>::from({c.n}, gv));
  std::vector<double> w(gv.begin(), gv.end()), grad;
  const auto ref = reference::graph_loss(s, t, o, infonce, w, grad);
  for (double v : loss.to_vector()) REQUIRE(std::isfinite(v));
  for (double v : x.grad().to_vector()) REQUIRE(std::isfinite(v));
  require_close(loss, Tensor<double>::from({c.n}, ref), tol, "row losses");
  double min_norm = std::numeric_limits<double>::infinity(), max_w = 0;
  for (std::int64_t i = 0; i < c.n; ++i) {
    double sq = 0;
    for (std::int64_t k = 0; k < c.cs; ++k) sq += double(s.data()[i * c.cs + k]) * double(s.data()[i * c.cs + k]);
    min_norm = std::min(min_norm, std::sqrt(sq));
    max_w = std::max(max_w, std::abs(w[std::size_t(i)]));
  }
  require_close_or_cancelled(x.grad(), Tensor<double>::from({c.n, c.cs}, grad), tol, max_w / tau / min_norm,
                             "student gradient");

  o.reduction = Reduction::Mean;
  auto xm = s.clone().requires_grad();
  auto mean = infonce ? graph_infonce_loss(xm, t, o) : graph_kd_loss(xm, t, o);
  mean.backward();
  std::int64_t rows = 0;
  double total = 0;
  for (std::int64_t i = 0; i < c.n; ++i) {
    const bool has = infonce ? detail::mask_spec(c.mask).row_active(i)
                             : detail::mask_spec(c.mask).row_active(i) &&
                                   detail::mask_spec(c.mask).col_end(i, c.n) - detail::mask_spec(c.mask).col_begin(i, c.n) > 1;
    rows += has ? 1 : 0;
    total += ref[std::size_t(i)];
  }
  std::vector<double> wm(std::size_t(c.n), rows > 0 ? 1.0 / double(rows) : 0.0), gm;
  reference::graph_loss(s, t, o, infonce, wm, gm);
  require_close(mean, Tensor<double>::scalar(rows > 0 ? total / double(rows) : 0.0), tol, "mean");
  require_close_or_cancelled(xm.grad(), Tensor<double>::from({c.n, c.cs}, gm), tol,
                             (rows > 0 ? 1.0 / double(rows) : 0.0) / tau / min_norm, "mean gradient");
}

/// Tolerance of the fast_float_tiles mode (float32 GEMM tiles): the float rounding of the normalised rows
/// and of the tile GEMMs (≈ 6e-8 · √C) is amplified by 1/τ in every logit and by cancellation in the
/// gradient sums; measured worst cases are ~1e-4 at τ = 0.01, and at τ ≥ 0.1 ~2e-5 with the AVX-512 and
/// AMX kernels but 6.9e-5 with the AVX2 ones (N = 130, C = 16, τ = 2: an element at 1% of the gradient's
/// largest, 3.5e-9 off in absolute terms), so 3e-4 · (0.01 / τ) floored at 1e-4. The default (float64
/// tiles) meets 1e-5 in float32 and 1e-10 in float64 everywhere.
double fast_float_tol(double tau) { return std::max(1e-4, 3e-4 * (0.01 / tau)); }

std::vector<Case> grid() {
  return {
      {1, 4, 4, GraphMask::full()},
      {2, 3, 5, GraphMask::full()},
      {7, 6, 6, GraphMask::full()},
      {7, 6, 6, GraphMask::block_diagonal(7)},
      {7, 5, 3, GraphMask::star(7)},
      {33, 8, 12, GraphMask::full()},
      {33, 8, 8, GraphMask::block_diagonal(3)},
      {33, 12, 8, GraphMask::star(11)},
      {130, 16, 24, GraphMask::full()},
      {130, 16, 16, GraphMask::block_diagonal(13)},
      {130, 24, 16, GraphMask::star(5)},
      {12, 4, 4, GraphMask::block_diagonal(1)},
      {12, 4, 4, GraphMask::star(1)},
      // groups smaller than the tile run one graph per tile, the others as masked tiles: each size takes both
      {130, 8, 6, GraphMask::block_diagonal(65)},
      {200, 6, 8, GraphMask::star(100)},
  };
}

}  // namespace

TEMPLATE_TEST_CASE("graph_kd_loss tiled equals the naive materialised loss", "[graph_kd]", float, double) {
  using T = TestType;
  for (const auto& c : grid())
    for (double tau : {0.01, 0.5})
      for (std::int64_t tile : {5, 128})
        check_against_reference<T>(c, tau, tile, false, std::is_same_v<T, double> ? 1e-10 : 1e-5);
}

TEMPLATE_TEST_CASE("graph_infonce_loss tiled equals the naive materialised loss", "[graph_kd]", float, double) {
  using T = TestType;
  for (auto c : grid()) {
    c.ct = c.cs;
    for (double tau : {0.01, 0.5})
      for (std::int64_t tile : {16})
        check_against_reference<T>(c, tau, tile, true, std::is_same_v<T, double> ? 1e-10 : 1e-5);
  }
}

// Tiles of 16 run the float32 GEMMs; tiles of 128 the AMX products where the CPU has them
// (gkd/ops/amx_int8.hpp, amx_bf16.hpp), at the same accuracy; the last two cases at wider rows.
TEST_CASE("graph_kd_loss with float32 tiles stays within the stated float32 rounding", "[graph_kd]") {
  auto cases = grid();
  cases.push_back({200, 64, 96, GraphMask::full()});
  cases.push_back({150, 96, 64, GraphMask::block_diagonal(75)});
  for (const auto& c : cases)
    for (double tau : {0.01, 2.0})
      for (std::int64_t tile : {16, 128}) {
        check_against_reference<float>(c, tau, tile, false, fast_float_tol(tau), 1.0, true);
        Case e = c;
        e.ct = e.cs;
        check_against_reference<float>(e, tau, tile, true, fast_float_tol(tau), 1.0, true);
      }
}

// Up to 1/τ = 200 (detail::kMaxSharedShift) the KL tiles take one exponential per logit against the
// bound 1/τ; below τ = 1/200 they keep per-row and per-column maxima. Both run in the cases above
// (τ = 0.01, 0.5, 2) and here.
TEST_CASE("graph_kd_loss below tau 1/200 (per-row maxima) equals the naive materialised loss", "[graph_kd]") {
  for (const auto& c : {Case{33, 8, 12, GraphMask::full()}, Case{130, 16, 16, GraphMask::block_diagonal(65)},
                        Case{200, 6, 8, GraphMask::star(100)}})
    for (std::int64_t tile : {16, 128}) {
      check_against_reference<double>(c, 0.002, tile, false, 1e-10);
      check_against_reference<float>(c, 0.002, tile, false, 1e-5);
      check_against_reference<float>(c, 0.002, tile, false, fast_float_tol(0.002), 1.0, true);
    }
}

TEST_CASE("graph_kd_loss is stable at tau 0.01 and for norms around 1e4", "[graph_kd]") {
  for (const auto& c : {Case{33, 8, 8, GraphMask::full()}, Case{40, 16, 16, GraphMask::star(8)}}) {
    check_against_reference<float>(c, 0.01, 16, false, 1e-5, 1e4);
    check_against_reference<float>(c, 0.01, 16, true, 1e-5, 1e4);
    check_against_reference<float>(c, 0.01, 16, false, fast_float_tol(0.01), 1e4, true);
    check_against_reference<double>(c, 0.01, 16, false, 1e-10, 1e4);
  }
  // identical rows up to scale: every similarity equals 1/τ = 100, the softmax is uniform, the KL is 0
  auto x = Tensor<float>::full({6, 3}, 1e4f).requires_grad();
  GraphKDOptions o;
  o.temperature = 0.01;
  auto l = graph_kd_loss(x, Tensor<float>::full({6, 4}, 3.f), o);
  l.backward();
  REQUIRE(l.item() == Approx(0.0).margin(1e-6));
  for (float v : x.grad().to_vector()) REQUIRE(std::isfinite(v));
}

// A NaN feature spreads to its similarities; the loss must be NaN, not a row silently dropped as empty.
TEST_CASE("graph_kd_loss and graph_infonce_loss are NaN, not 0, where a feature is NaN", "[graph_kd]") {
  const auto s = random<float>({300, 64}, 51), t = random<float>({300, 64}, 52);
  for (bool in_teacher : {false, true})
    for (bool fast : {false, true}) {  // fast: float tiles, on AMX where the CPU has it
      INFO((in_teacher ? "teacher" : "student") << (fast ? ", float tiles" : ", float64 tiles"));
      auto sv = s.to_vector(), tv = t.to_vector();
      (in_teacher ? tv : sv)[5 * 64 + 3] = std::numeric_limits<float>::quiet_NaN();
      const auto sn = Tensor<float>::from({300, 64}, sv), tn = Tensor<float>::from({300, 64}, tv);
      GraphKDOptions o;
      o.fast_float_tiles = fast;
      o.temperature = 0.1;
      REQUIRE(std::isnan(graph_kd_loss(sn, tn, o).item()));
      REQUIRE(std::isnan(graph_infonce_loss(sn, tn, o).item()));
    }
}

TEST_CASE("graph_kd_loss gradcheck", "[gradcheck][graph_kd]") {
  const auto s = random({8, 5}, 11), t = random({8, 3}, 12), t5 = random({8, 5}, 13);
  for (auto mask : {GraphMask::full(), GraphMask::block_diagonal(4), GraphMask::star(4)})
    for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      if (mask.kind != GraphMask::Kind::Full && r == Reduction::Sum) continue;  // Sum = Mean up to a constant
      INFO(graph_mask_name(mask.kind) << " " << reduction_name(r));
      GraphKDOptions o;
      o.temperature = 0.3;
      o.mask = mask;
      o.reduction = r;
      o.tile = 5;
      require_gradcheck([&](const In& v) { return graph_kd_loss(v[0], t, o); }, {s});
      require_gradcheck([&](const In& v) { return graph_infonce_loss(v[0], t5, o); }, {s});
    }
}

TEST_CASE("graph_kd_loss does not depend on the thread count", "[graph_kd]") {
  const auto s = random<float>({70, 9}, 21), t = random<float>({70, 6}, 22);
  GraphKDOptions o;
  o.tile = 8;
  o.temperature = 0.2;
  gkd::test::require_thread_count_invariant([&] {
    auto x = s.clone().requires_grad();
    auto l = graph_kd_loss(x, t, o);
    l.backward();
    return gkd::test::flat({l, x.grad()});
  });
  // float tiles of 32 (AMX products where the CPU has them, operands packed by several threads)
  const auto sf = random<float>({300, 256}, 23), tf = random<float>({300, 256}, 24);
  o.tile = 32;
  o.fast_float_tiles = true;
  for (bool infonce : {false, true})
    gkd::test::require_thread_count_invariant([&] {
      auto x = sf.clone().requires_grad();
      auto l = infonce ? graph_infonce_loss(x, tf, o) : graph_kd_loss(x, tf, o);
      l.backward();
      return gkd::test::flat({l, x.grad()});
    });
}

// Groups of 5 with tiles of 7 run one graph per tile: the op keeps the logit tiles, the raw backward
// recomputes them.
TEST_CASE("graph_kd raw-pointer entry points match the op", "[graph_kd]") {
  const auto s = random<float>({20, 6}, 31), t = random<float>({20, 4}, 32);
  GraphKDOptions o;
  o.mask = GraphMask::block_diagonal(5);
  o.tile = 7;
  auto x = s.clone().requires_grad();
  auto l = graph_kd_loss(x, t, o);
  l.backward();
  std::vector<double> loss(20), lse(40);
  const auto rows = graph_kd_forward(s.data(), t.data(), 20, 6, 4, o, loss.data(), lse.data());
  REQUIRE(rows == 20);
  double total = 0;
  for (double v : loss) total += v;
  REQUIRE(total / 20 == Approx(double(l.item())).epsilon(1e-6));
  std::vector<double> w(20, 1.0 / 20);
  std::vector<float> g(120);
  graph_kd_backward(s.data(), t.data(), 20, 6, 4, o, lse.data(), w.data(), g.data());
  require_close(Tensor<float>::from({20, 6}, g), x.grad(), 1e-6, "raw gradient");
}

TEST_CASE("graph_kd_loss bad input raises gkd::Error", "[errors][graph_kd]") {
  const auto s = Tensor<float>::zeros({6, 3}), t = Tensor<float>::zeros({6, 4});
  GraphKDOptions o;
  REQUIRE_THROWS_WITH(graph_kd_loss(s, Tensor<float>::zeros({5, 4}), o),
                      Catch::Contains("graph_kd_loss") && Catch::Contains("[6, 3]") && Catch::Contains("[5, 4]"));
  REQUIRE_THROWS_WITH(graph_kd_loss(Tensor<float>::zeros({6}), t, o), Catch::Contains("graph_kd_loss"));
  REQUIRE_THROWS_WITH(graph_infonce_loss(s, t, o), Catch::Contains("graph_infonce_loss") && Catch::Contains("widths"));
  o.temperature = 0;
  REQUIRE_THROWS_WITH(graph_kd_loss(s, t, o), Catch::Contains("temperature"));
  o.temperature = -1;
  REQUIRE_THROWS_WITH(graph_kd_loss(s, t, o), Catch::Contains("temperature"));
  o.temperature = 1;
  o.mask = GraphMask::block_diagonal(4);
  REQUIRE_THROWS_WITH(graph_kd_loss(s, t, o), Catch::Contains("group_size 4") && Catch::Contains("N = 6"));
  o.mask = GraphMask::star(0);
  REQUIRE_THROWS_WITH(graph_kd_loss(s, t, o), Catch::Contains("star"));
  o.mask = GraphMask::full();
  o.tile = 0;
  REQUIRE_THROWS_WITH(graph_kd_loss(s, t, o), Catch::Contains("tile"));
}

// float64 only: see tools/golden/graph_kd.py (PyTorch's float32 GEMMs are less accurate than gkd's float32).
TEST_CASE("graph_kd_loss and graph_infonce_loss match PyTorch", "[golden][graph_kd]") {
  using T = double;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("graph_kd");
  const std::vector<bool> student_only{true, false};
  auto opts = [](double tau, GraphMask m, Reduction r) {
    GraphKDOptions o;
    o.temperature = tau;
    o.mask = m;
    o.reduction = r;
    o.tile = 5;
    return o;
  };
  const struct {
    const char* name;
    GraphKDOptions o;
    bool infonce;
  } cases[] = {
      {"kl_full_mean", opts(0.5, GraphMask::full(), Reduction::Mean), false},
      {"kl_full_none", opts(0.1, GraphMask::full(), Reduction::None), false},
      {"kl_block_sum", opts(1.0, GraphMask::block_diagonal(4), Reduction::Sum), false},
      {"kl_star_mean", opts(0.2, GraphMask::star(4), Reduction::Mean), false},
      {"kl_star_none", opts(2.0, GraphMask::star(6), Reduction::None), false},
      {"nce_full_mean", opts(0.1, GraphMask::full(), Reduction::Mean), true},
      {"nce_block_none", opts(0.5, GraphMask::block_diagonal(3), Reduction::None), true},
      {"nce_star_sum", opts(0.3, GraphMask::star(4), Reduction::Sum), true},
  };
  for (const auto& c : cases)
    gkd::test::check_golden_case<T>(g, c.name, [&](const V& x) {
      return c.infonce ? graph_infonce_loss(x[0], x[1], c.o) : graph_kd_loss(x[0], x[1], c.o);
    }, student_only);
}

// The op computes InfoNCE's gradient in its forward sweep; the raw-pointer entry points run that sweep on
// their own (the forward without the gradient, the backward again with it). Both must give the same
// losses and gradient.
TEST_CASE("graph_infonce_loss autodiff matches the raw-pointer entry points", "[graph_kd]") {
  const auto s = random<float>({150, 64}, 41), t = random<float>({150, 64}, 42);
  const auto gout = random<float>({150}, 43);
  for (auto mask : {GraphMask::full(), GraphMask::block_diagonal(75), GraphMask::star(50), GraphMask::block_diagonal(10),
                    GraphMask::star(5)})
    for (bool fast : {false, true})
      for (double tau : {0.01, 0.5}) {
        INFO(graph_mask_name(mask.kind) << (fast ? ", float tiles" : ", float64 tiles") << ", tau " << tau);
        GraphKDOptions o;
        o.mask = mask;
        o.tile = 32;
        o.temperature = tau;
        o.fast_float_tiles = fast;
        o.reduction = Reduction::None;
        auto x = s.clone().requires_grad();
        auto l = graph_infonce_loss(x, t, o);
        l.backward(gout);
        std::vector<double> loss(150), lse(150);
        graph_infonce_forward(s.data(), t.data(), 150, 64, o, loss.data(), lse.data());
        require_close(l, Tensor<double>::from({150}, loss), 1e-6, "row losses");
        const auto gv = gout.to_vector();
        const std::vector<double> w(gv.begin(), gv.end());
        std::vector<float> g(150 * 64);
        graph_infonce_backward(s.data(), t.data(), 150, 64, o, lse.data(), w.data(), g.data());
        require_close(x.grad(), Tensor<float>::from({150, 64}, g), fast ? fast_float_tol(tau) : 1e-5, "gradient");
      }
}

// Where the positive dominates (student rows = teacher rows, τ = 0.002: the positive's logit is 500 and
// the others at least 50 below it), softmax_ii rounds to 1 and the gradient is of order 1e-19. Computed
// as Σ_j softmax_ij t̂_j − t̂_i it cancels to 0 or to rounding noise; summed over j ≠ i it keeps its
// relative accuracy, in the op (gradient in the forward sweep), the raw backward and the reference alike.
TEST_CASE("graph_infonce_loss keeps the gradient's relative accuracy when the positive dominates", "[graph_kd]") {
  const std::int64_t n = 8, c = 4;
  const auto t = random<double>({n, c}, 77);
  double max_cos = -1;  // the regime meant: no two rows closer than cos 0.9
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      if (i == j) continue;
      double dot = 0, ni = 0, nj = 0;
      for (std::int64_t k = 0; k < c; ++k) {
        dot += t.data()[i * c + k] * t.data()[j * c + k];
        ni += t.data()[i * c + k] * t.data()[i * c + k];
        nj += t.data()[j * c + k] * t.data()[j * c + k];
      }
      max_cos = std::max(max_cos, dot / std::sqrt(ni * nj));
    }
  REQUIRE(max_cos < 0.9);
  for (auto mask : {GraphMask::full(), GraphMask::block_diagonal(4), GraphMask::star(4)}) {
    INFO(graph_mask_name(mask.kind));
    GraphKDOptions o;
    o.mask = mask;
    o.temperature = 0.002;
    o.reduction = Reduction::Sum;
    auto x = t.clone().requires_grad();
    graph_infonce_loss(x, t, o).backward();
    std::vector<double> w(n, 1.0), expected;
    reference::graph_loss(t, t, o, true, w, expected);
    double largest = 0;
    for (double v : expected) largest = std::max(largest, std::abs(v));
    REQUIRE(largest > 0);
    REQUIRE(largest < 1e-12);
    require_close(x.grad(), Tensor<double>::from({n, c}, expected), 1e-10, "op gradient");
    std::vector<double> loss(n), lse(n), raw(n * c);
    graph_infonce_forward(t.data(), t.data(), n, c, o, loss.data(), lse.data());
    graph_infonce_backward(t.data(), t.data(), n, c, o, lse.data(), w.data(), raw.data());
    require_close(Tensor<double>::from({n, c}, raw), Tensor<double>::from({n, c}, expected), 1e-10, "raw gradient");
  }
}
