// SPDX-License-Identifier: Apache-2.0
// The per-graph mathematics of the CUDA SmallGraphs schedule (gkd/losses/detail/graph_kd_small.hpp) on raw
// Grams, run here row after row in float64 exactly as the kernel runs it one thread per row (G written over
// the teacher Gram, M over the student Gram), against the naive materialised loss: per-row losses, and the
// student gradient for a random upstream gradient per row. (The CPU op runs such graphs as one tile each
// with the per-tile functions of gkd/losses/detail/graph_kd_tile.hpp; tests/losses/test_graph_kd.cpp.)
#include "support/check.hpp"

#include "gkd/losses/detail/graph_kd_small.hpp"
#include "gkd/losses/graph_kd.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_close;

namespace {

struct Case {
  std::int64_t n, cs, ct;
  GraphMask mask;
  double tau;
  bool nce;
  std::int64_t zero_student = -1, zero_teacher = -1;  // rows set to zero (the eps-clamped branch)
};

struct Result {
  std::vector<double> row_loss, grad;
};

/// Raw dot products of rows first … first + g − 1 of a [n, c] and b [n, c], into a g × ld matrix.
std::vector<double> gram(const std::vector<double>& a, const std::vector<double>& b, std::int64_t c, std::int64_t first,
                         int g, int ld) {
  std::vector<double> out(std::size_t(g * ld), 0.0);
  for (int i = 0; i < g; ++i)
    for (int j = 0; j < g; ++j)
      for (std::int64_t k = 0; k < c; ++k)
        out[std::size_t(i * ld + j)] += a[std::size_t((first + i) * c + k)] * b[std::size_t((first + j) * c + k)];
  return out;
}

Result run_small(const Case& c, const std::vector<double>& s, const std::vector<double>& t,
                 const std::vector<double>& weight, double eps) {
  const detail::MaskSpec mask = detail::mask_spec(c.mask);
  const int g = c.mask.kind == GraphMask::Kind::Full ? int(c.n) : int(c.mask.group_size);
  const int ld = g + 1;  // the kernel pads its shared rows too
  Result r{std::vector<double>(std::size_t(c.n)), std::vector<double>(std::size_t(c.n * c.cs), 0.0)};
  for (std::int64_t first = 0; first < c.n; first += g) {
    auto row_norms = [&](const std::vector<double>& x, std::int64_t ch, std::vector<double>& norm, std::vector<double>& inv) {
      for (int i = 0; i < g; ++i) {
        double sq = 0;
        for (std::int64_t k = 0; k < ch; ++k) sq += x[std::size_t((first + i) * ch + k)] * x[std::size_t((first + i) * ch + k)];
        norm.push_back(std::sqrt(sq));
        inv.push_back(detail::inv_row_norm(sq, eps));
      }
    };
    std::vector<double> norm_s, inv_s, norm_t, inv_t;
    row_norms(s, c.cs, norm_s, inv_s);
    row_norms(t, c.ct, norm_t, inv_t);
    std::vector<double> ga = c.nce ? std::vector<double>(std::size_t(g * ld)) : gram(t, t, c.ct, first, g, ld);
    std::vector<double> gb = c.nce ? gram(s, t, c.cs, first, g, ld) : gram(s, s, c.cs, first, g, ld);
    const detail::SmallGraph<double> graph{.size = g, .ld = ld, .first = first, .n = c.n, .mask = mask,
                                           .inv_tau = 1.0 / c.tau, .nce = c.nce, .eps = eps, .gram_a = ga.data(),
                                           .gram_b = gb.data(), .inv_s = inv_s.data(), .inv_t = inv_t.data(),
                                           .norm_s = norm_s.data()};
    std::vector<double> lse_a(static_cast<std::size_t>(g)), lse_b(static_cast<std::size_t>(g));
    for (int i = 0; i < g; ++i) {
      if (c.nce) {
        const auto row = graph.nce_row(i);
        r.row_loss[std::size_t(first + i)] = row.loss();
        lse_b[std::size_t(i)] = row.lse.value();
      } else {
        const auto row = graph.kl_row(i);
        r.row_loss[std::size_t(first + i)] = row.loss();
        lse_a[std::size_t(i)] = row.t.value();
        lse_b[std::size_t(i)] = row.s.value();
      }
    }
    // as the kernel: every row's G (over the teacher Gram), then every row's M (over the student Gram)
    for (int i = 0; i < g; ++i)
      graph.coefficients(i, lse_a[std::size_t(i)], lse_b[std::size_t(i)], weight[std::size_t(first + i)], ga.data());
    std::vector<double> self(static_cast<std::size_t>(g));
    for (int i = 0; i < g; ++i) self[std::size_t(i)] = graph.gradient_row(i, ga.data(), gb.data() + i * ld);
    const std::vector<double>& y = c.nce ? t : s;
    for (int i = 0; i < g; ++i)
      for (std::int64_t k = 0; k < c.cs; ++k) {
        double v = self[std::size_t(i)] * s[std::size_t((first + i) * c.cs + k)];
        for (int j = 0; j < g; ++j) v += gb[std::size_t(i * ld + j)] * y[std::size_t((first + j) * c.cs + k)];
        r.grad[std::size_t((first + i) * c.cs + k)] = v;
      }
  }
  return r;
}

void check_case(const Case& c) {
  INFO("n " << c.n << " C_s " << c.cs << " C_t " << c.ct << " mask " << graph_mask_name(c.mask.kind) << " group "
            << c.mask.group_size << " tau " << c.tau << (c.nce ? " infonce" : " kl") << " zero rows " << c.zero_student
            << ", " << c.zero_teacher);
  auto s = random<double>({c.n, c.cs}, 10 + std::uint64_t(c.n * 3 + c.cs));
  auto t = random<double>({c.n, c.ct}, 20 + std::uint64_t(c.n * 5 + c.ct));
  if (c.zero_student >= 0) std::fill_n(s.data() + c.zero_student * c.cs, c.cs, 0.0);
  if (c.zero_teacher >= 0) std::fill_n(t.data() + c.zero_teacher * c.ct, c.ct, 0.0);
  const auto w = random<double>({c.n}, 30 + std::uint64_t(c.n));
  GraphKDOptions o;
  o.temperature = c.tau;
  o.mask = c.mask;
  o.reduction = Reduction::None;
  std::vector<double> expected;
  const auto loss = reference::graph_loss(s, t, o, c.nce, w.to_vector(), expected);
  const Result r = run_small(c, s.to_vector(), t.to_vector(), w.to_vector(), o.eps);
  require_close(Tensor<double>::from({c.n}, r.row_loss), Tensor<double>::from({c.n}, loss), 1e-10, "row losses");
  // row by row: a zero row's gradient is O(1/eps), the others' O(1)
  for (std::int64_t i = 0; i < c.n; ++i) {
    const auto at = [&](const std::vector<double>& v) {
      return Tensor<double>::from({c.cs}, std::vector<double>(v.begin() + i * c.cs, v.begin() + (i + 1) * c.cs));
    };
    INFO("gradient row " << i);
    require_close(at(r.grad), at(expected), 1e-10, "student gradient");
  }
}

}  // namespace

TEST_CASE("SmallGraphs per-graph mathematics equals the naive materialised loss, KL and InfoNCE", "[losses][graph_kd]") {
  for (bool nce : {false, true}) {
    const auto ct = [&](std::int64_t cs, std::int64_t other) { return nce ? cs : other; };
    check_case({80, 24, ct(24, 16), GraphMask::star(5), 0.5, nce});  // DCGD's intra star graphs
    check_case({60, 20, ct(20, 33), GraphMask::block_diagonal(6), 0.2, nce});
    check_case({30, 7, ct(7, 9), GraphMask::full(), 1.0, nce});
    check_case({24, 12, ct(12, 12), GraphMask::star(12), 0.01, nce});  // sharp softmaxes
    check_case({6, 5, ct(5, 3), GraphMask::block_diagonal(1), 0.5, nce});  // no KL edges
    check_case({2, 4, ct(4, 6), GraphMask::full(), 0.5, nce});
    check_case({20, 9, ct(9, 11), GraphMask::block_diagonal(5), 0.3, nce, 7, 12});  // clamped rows
    check_case({20, 9, ct(9, 11), GraphMask::star(5), 0.3, nce, 5, 10});             // a clamped anchor
  }
}

// Where the positive dominates (τ = 0.002, student rows 1% off the teacher's, the teacher's rows no closer
// than cos 0.9), softmax_ii rounds to 1. Its coefficient computed as softmax_ii − 1 is then 0, dropping the
// −(1 − softmax_ii) t̂_i term; with the student rows off the teacher's, the normalisation's projection does
// not remove that term, and the gradient (of order 1e-38) was 16% off in its worst element. Summed over
// the other columns, the coefficient keeps the gradient's relative accuracy.
TEST_CASE("SmallGraphs InfoNCE keeps the gradient's relative accuracy when the positive dominates", "[losses][graph_kd]") {
  const std::int64_t n = 8, c = 4;
  const auto t = random<double>({n, c}, 77);  // no two rows closer than cos 0.9 (checked in test_graph_kd)
  auto s = random<double>({n, c}, 78);
  for (std::int64_t k = 0; k < n * c; ++k) s.data()[k] = t.data()[k] + 0.01 * s.data()[k];
  for (auto mask : {GraphMask::full(), GraphMask::block_diagonal(4), GraphMask::star(4)}) {
    INFO(graph_mask_name(mask.kind));
    GraphKDOptions o;
    o.mask = mask;
    o.temperature = 0.002;
    o.reduction = Reduction::None;
    const std::vector<double> w(n, 1.0);
    std::vector<double> expected;
    const auto loss = reference::graph_loss(s, t, o, true, w, expected);
    double largest = 0;
    for (double v : expected) largest = std::max(largest, std::abs(v));
    REQUIRE(largest > 0);
    REQUIRE(largest < 1e-12);
    const Result r = run_small({n, c, c, mask, o.temperature, true}, s.to_vector(), t.to_vector(), w, o.eps);
    require_close(Tensor<double>::from({n}, r.row_loss), Tensor<double>::from({n}, loss), 1e-10, "row losses");
    require_close(Tensor<double>::from({n, c}, r.grad), Tensor<double>::from({n, c}, expected), 1e-10, "student gradient");
  }
}
