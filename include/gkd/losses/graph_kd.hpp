// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Graph-contrastive distillation (DCGD, method.md §6): relational KL between the teacher's and the
/// student's similarity graphs, and the teacher-student InfoNCE, as tiled fused CPU kernels with O(N·C)
/// memory (the N×N similarity matrices are never materialised).
///
/// Inputs: student F_s [N, C_s] and teacher F_t [N, C_t], one node per row. Rows are L2-normalised
/// inside the op (x / max(‖x‖, eps)); with τ the temperature, S_t = F̂_t F̂_tᵀ / τ and S_s = F̂_s F̂_sᵀ / τ.
///
///   graph_kd_loss:      loss_i = KL(softmax_j S_t[i, j] ‖ softmax_j S_s[i, j])   over the edges (i, j)
///   graph_infonce_loss: loss_i = −log softmax_j (F̂_s[i] · F̂_t[j] / τ)[i]        (needs C_s == C_t)
///
/// The mask (`GraphMask`) says which columns row i sees:
///   Full                       every j ≠ i;
///   BlockDiagonal{g}           j ≠ i in the same group of g consecutive rows (many small graphs, e.g.
///                              one per sample: rows b·g … b·g + g − 1);
///   Star{g}                    only the anchor rows (the first row of each group of g) have a loss, over
///                              the other g − 1 rows of their group (DCGD's intra-coupling star).
/// The InfoNCE form uses the same columns plus j = i itself, the positive.
/// Reduction: Mean averages over the rows that have a loss term (rows with at least one column; 0 when
/// none has), Sum adds them, None returns loss_i for every row ([N], 0 for rows without a term).
///
/// The teacher is frozen: gradients flow to F_s only (the teacher input is treated as a constant, as if
/// detached). Since ∂L/∂S_s is applied to S_s = F̂_s F̂_sᵀ / τ, dF̂_s gets a row and a column term:
/// dF̂_s[i] = (1/τ) Σ_j (G[i, j] + G[j, i]) F̂_s[j], G[i, j] = w_i (q_ij − p_ij).
/// Algorithm (Inf-CL / FlashAttention style): forward visits row blocks × column tiles, each tile's
/// similarities come from a small GEMM (Eigen), rows are merged with the online log-sum-exp of
/// gkd/losses/detail/graph_kd_tile.hpp; only the two log-sum-exps per row are stored. Backward recomputes
/// the tiles from them (no atomics: each row block owns its output rows). Memory: O(N·C + tile²·threads).
/// Results do not depend on the thread count.
///
/// Raw-pointer entry points (`graph_kd_forward` / `graph_kd_backward`, `graph_infonce_forward` /
/// `graph_infonce_backward`) run the same kernels without tensors or autodiff.
/// @code
///   gkd::GraphKDOptions o;
///   o.temperature = 0.5;
///   o.mask = gkd::GraphMask::star(1 + K);              // one anchor + K augmented views per sample
///   auto intra = gkd::graph_kd_loss(z_student, z_teacher.detach(), o);
///   o.mask = gkd::GraphMask::full();
///   auto inter = gkd::graph_kd_loss(z_student_aug, z_teacher_aug.detach(), o);
/// @endcode
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gkd/losses/detail/graph_kd_tile.hpp"
#include "gkd/losses/reduction.hpp"
#include "gkd/ops/linalg.hpp"

namespace gkd {

/// Which node pairs are edges of the graph (see the file comment).
struct GraphMask {
  enum class Kind { Full, BlockDiagonal, Star };
  Kind kind = Kind::Full;
  std::int64_t group_size = 0;  ///< nodes per group (BlockDiagonal, Star); must divide N

  static GraphMask full() { return {}; }
  static GraphMask block_diagonal(std::int64_t group_size) { return {Kind::BlockDiagonal, group_size}; }
  static GraphMask star(std::int64_t group_size) { return {Kind::Star, group_size}; }
};

/// "full", "block_diagonal" or "star".
inline std::string_view graph_mask_name(GraphMask::Kind k) {
  return k == GraphMask::Kind::Full ? "full" : k == GraphMask::Kind::BlockDiagonal ? "block_diagonal" : "star";
}

/// Options of graph_kd_loss and graph_infonce_loss.
struct GraphKDOptions {
  double temperature = 1.0;             ///< τ > 0
  GraphMask mask{};                     ///< the graph's edges
  Reduction reduction = Reduction::Mean;
  std::int64_t tile = 128;              ///< rows and columns per tile (≥ 1; any N works)
  double eps = 1e-12;                   ///< norm clamp of the row normalisation
  /// Arithmetic of the similarity tiles for float32 inputs. false (default): float64 tiles, the accurate
  /// oracle (agrees with a float64 evaluation to ~1e-7 relative at any τ). true: float32 GEMM tiles, about
  /// twice as fast, with relative errors ≈ 6e-8 · √C / τ in the logits (1e-5 … 1e-4 at τ = 0.01).
  /// Float64 inputs always use float64 tiles.
  bool fast_float_tiles = false;
};

namespace detail {

inline MaskSpec mask_spec(const GraphMask& m) {
  return {m.kind == GraphMask::Kind::Full ? 0 : m.kind == GraphMask::Kind::BlockDiagonal ? 1 : 2,
          m.kind == GraphMask::Kind::Full ? 1 : m.group_size};
}

/// Validates shapes and options (op names the caller).
inline void check_graph_kd_args(std::string_view op, std::int64_t n, std::int64_t cs, std::int64_t ct,
                                const GraphKDOptions& o, bool same_width) {
  GKD_CHECK(n >= 1 && cs >= 1 && ct >= 1, op,
            "needs non-empty [N, C] features, got student [" << n << ", " << cs << "] and teacher [" << n << ", " << ct
                                                             << "]");
  GKD_CHECK(!same_width || cs == ct, op,
            "InfoNCE needs equal student and teacher widths, got student [" << n << ", " << cs << "] and teacher ["
                                                                           << n << ", " << ct << "]");
  GKD_CHECK(o.temperature > 0 && std::isfinite(o.temperature), op,
            "temperature must be positive and finite, got " << o.temperature);
  GKD_CHECK(o.tile >= 1, op, "tile must be >= 1, got " << o.tile);
  GKD_CHECK(o.eps >= 0, op, "eps must be non-negative, got " << o.eps);
  if (o.mask.kind != GraphMask::Kind::Full)
    GKD_CHECK(o.mask.group_size >= 1 && n % o.mask.group_size == 0, op,
              graph_mask_name(o.mask.kind) << " mask group_size " << o.mask.group_size
                                           << " must be >= 1 and divide N = " << n);
}

/// The row-normalised features of one problem in the tile compute type G, computed once and shared by
/// forward and backward.
template <Real G>
struct GraphProblem {
  std::int64_t n = 0, cs = 0, ct = 0;
  double inv_tau = 1, eps = 0;
  MaskSpec mask;
  std::int64_t tile = 128;
  std::vector<G> s_hat, t_hat;    ///< [N, C_s], [N, C_t]
  std::vector<double> s_norm;     ///< ‖F_s[i]‖ (unclamped)

  template <Real T>
  GraphProblem(const T* fs, const T* ft, std::int64_t n_, std::int64_t cs_, std::int64_t ct_, const GraphKDOptions& o)
      : n(n_), cs(cs_), ct(ct_), inv_tau(1.0 / o.temperature), eps(o.eps), mask(mask_spec(o.mask)), tile(o.tile),
        s_hat(static_cast<std::size_t>(n * cs)), t_hat(static_cast<std::size_t>(n * ct)),
        s_norm(static_cast<std::size_t>(n)) {
#pragma omp parallel for if (n * (cs + ct) > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      s_norm[std::size_t(i)] = normalise_row(fs + i * cs, s_hat.data() + i * cs, cs);
      normalise_row(ft + i * ct, t_hat.data() + i * ct, ct);
    }
  }
  template <Real T>
  double normalise_row(const T* x, G* y, std::int64_t c) const {
    double sq = 0;
    for (std::int64_t k = 0; k < c; ++k) sq += double(x[k]) * double(x[k]);
    const double inv = inv_row_norm(sq, eps);
    for (std::int64_t k = 0; k < c; ++k) y[k] = static_cast<G>(double(x[k]) * inv);
    return std::sqrt(sq);
  }
  /// Candidate columns [j0, j1) of the rows [i0, i1).
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> columns(std::int64_t i0, std::int64_t i1) const {
    return {mask.col_begin(i0, n), mask.col_end(i1 - 1, n)};
  }
  /// out[r, c] = x[i0 + r] · y[j0 + c] for r < i1 − i0, c < j1 − j0 (a tile of x yᵀ).
  static void tile_gemm(const G* x, const G* y, std::int64_t c, std::int64_t i0, std::int64_t i1, std::int64_t j0,
                        std::int64_t j1, RowMatrix<G>& out) {
    out.resize(i1 - i0, j1 - j0);
    out.noalias() = ConstMap<G>(x + i0 * c, i1 - i0, c) * ConstMap<G>(y + j0 * c, j1 - j0, c).transpose();
  }
  /// Applies normalize's backward to dx̂ (in place → dF_s row i).
  template <Real T>
  void normalise_backward(std::int64_t i, const double* g, T* out) const {
    const double nrm = s_norm[std::size_t(i)];
    const G* sh = s_hat.data() + i * cs;
    if (nrm >= eps && nrm > 0) {
      double dot = 0;
      for (std::int64_t k = 0; k < cs; ++k) dot += g[k] * double(sh[k]);
      for (std::int64_t k = 0; k < cs; ++k) out[k] = static_cast<T>((g[k] - double(sh[k]) * dot) / nrm);
    } else {
      for (std::int64_t k = 0; k < cs; ++k) out[k] = static_cast<T>(g[k] / (eps > 0 ? eps : 1.0));
    }
  }
  [[nodiscard]] std::int64_t blocks() const { return (n + tile - 1) / tile; }
};

/// A tile of logits, its edge mask and the per-row / per-column vectors the tile kernels use. The
/// element-wise work (exp, masking, row sums) runs on whole tiles through Eigen's vectorised array
/// expressions in double; rows are then merged into their running state with graph_kd_tile.hpp.
using TileArray = Eigen::Array<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using TileMask = Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVec = Eigen::Array<double, 1, Eigen::Dynamic>;
using ColVec = Eigen::Array<double, Eigen::Dynamic, 1>;

/// mask(r, c) = pred(i0 + r, j0 + c).
template <class Pred>
void tile_mask(std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1, Pred&& pred, TileMask& mask) {
  mask.resize(i1 - i0, j1 - j0);
  for (std::int64_t i = i0; i < i1; ++i)
    for (std::int64_t j = j0; j < j1; ++j) mask(i - i0, j - j0) = pred(i, j);
}

/// Row-wise online-lse partial of a masked logit tile: max (the lowest value for empty rows) and Σ exp(x − max).
inline void tile_row_lse(const TileArray& x, const TileMask& mask, ColVec& max, ColVec& sum, TileArray& e) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  max = mask.select(x, -inf).rowwise().maxCoeff();
  const ColVec shift = (max == -inf).select(ColVec::Zero(max.size()), max);
  e = mask.select(x.colwise() - shift, -inf).exp();  // 0 off the mask, never inf − inf
  sum = e.rowwise().sum();
  max = (max == -inf).select(ColVec::Constant(max.size(), tile_lowest<double>()), max);
}

/// A saved log-sum-exp made safe for broadcasting (rows without terms hold the lowest value; their
/// entries are masked out, so any finite stand-in works).
inline double safe_lse(double v) { return v == tile_lowest<double>() ? 0.0 : v; }

/// Forward of the KL form: row_lse[2i] = lse of teacher row i, row_lse[2i+1] = lse of student row i,
/// row_loss[i] = loss_i. Returns the number of rows with a loss term.
template <Real G>
std::int64_t graph_kd_forward_impl(const GraphProblem<G>& p, double* row_lse, double* row_loss) {
  const std::int64_t nb = p.blocks();
  std::int64_t rows = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : rows) if (nb > 1)
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::int64_t i0 = b * p.tile, i1 = std::min(p.n, i0 + p.tile);
    std::vector<KlRow<double>> acc(static_cast<std::size_t>(i1 - i0));
    RowMatrix<G> ta, sb;
    TileArray a, s, et, es;
    TileMask mask;
    ColVec mt, st, ms, ss, wt;
    const auto [c0, c1] = p.columns(i0, i1);
    for (std::int64_t j0 = c0; j0 < c1; j0 += p.tile) {
      const std::int64_t j1 = std::min(c1, j0 + p.tile);
      GraphProblem<G>::tile_gemm(p.t_hat.data(), p.t_hat.data(), p.ct, i0, i1, j0, j1, ta);
      GraphProblem<G>::tile_gemm(p.s_hat.data(), p.s_hat.data(), p.cs, i0, i1, j0, j1, sb);
      a = ta.template cast<double>().array() * p.inv_tau;
      s = sb.template cast<double>().array() * p.inv_tau;
      tile_mask(i0, i1, j0, j1, [&](std::int64_t i, std::int64_t j) { return p.mask.edge(i, j, p.n); }, mask);
      tile_row_lse(a, mask, mt, st, et);
      tile_row_lse(s, mask, ms, ss, es);
      wt = (et * (a - s)).rowwise().sum();  // et is 0 off the mask
      for (std::int64_t r = 0; r < i1 - i0; ++r) {
        KlRow<double> part;
        part.t.max = mt(r);
        part.t.sum = st(r);
        part.s.max = ms(r);
        part.s.sum = ss(r);
        part.weighted = wt(r);
        acc[std::size_t(r)].merge(part);
      }
    }
    for (std::int64_t i = i0; i < i1; ++i) {
      const auto& row = acc[std::size_t(i - i0)];
      row_lse[2 * i] = row.t.value();
      row_lse[2 * i + 1] = row.s.value();
      row_loss[i] = row.loss();
      rows += row.empty() ? 0 : 1;
    }
  }
  return rows;
}

/// Backward of the KL form: grad = dL/dF_s given w_i = dL/dloss_i.
template <Real G, Real T>
void graph_kd_backward_impl(const GraphProblem<G>& p, const double* row_lse, const double* w, T* grad) {
  const std::int64_t nb = p.blocks();
#pragma omp parallel for schedule(dynamic) if (nb > 1)
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::int64_t i0 = b * p.tile, i1 = std::min(p.n, i0 + p.tile), m = i1 - i0;
    RowMatrix<G> ta, sb;
    TileArray a, s;
    TileMask row_edge, col_edge;
    RowMatrix<double> dx = RowMatrix<double>::Zero(m, p.cs);
    ColVec lt_i(m), ls_i(m), w_i(m);
    for (std::int64_t r = 0; r < m; ++r) {
      lt_i(r) = safe_lse(row_lse[2 * (i0 + r)]);
      ls_i(r) = safe_lse(row_lse[2 * (i0 + r) + 1]);
      w_i(r) = w[i0 + r];
    }
    const auto [c0, c1] = p.columns(i0, i1);
    for (std::int64_t j0 = c0; j0 < c1; j0 += p.tile) {
      const std::int64_t j1 = std::min(c1, j0 + p.tile), k = j1 - j0;
      GraphProblem<G>::tile_gemm(p.t_hat.data(), p.t_hat.data(), p.ct, i0, i1, j0, j1, ta);
      GraphProblem<G>::tile_gemm(p.s_hat.data(), p.s_hat.data(), p.cs, i0, i1, j0, j1, sb);
      a = ta.template cast<double>().array() * p.inv_tau;
      s = sb.template cast<double>().array() * p.inv_tau;
      RowVec lt_j(k), ls_j(k), w_j(k);
      for (std::int64_t c = 0; c < k; ++c) {
        lt_j(c) = safe_lse(row_lse[2 * (j0 + c)]);
        ls_j(c) = safe_lse(row_lse[2 * (j0 + c) + 1]);
        w_j(c) = w[j0 + c];
      }
      tile_mask(i0, i1, j0, j1, [&](std::int64_t i, std::int64_t j) { return p.mask.edge(i, j, p.n); }, row_edge);
      tile_mask(i0, i1, j0, j1, [&](std::int64_t i, std::int64_t j) { return p.mask.edge(j, i, p.n); }, col_edge);
      // H = (G + Gᵀ)/τ with G[i, j] = w_i (q_ij − p_ij): the row term and, by symmetry of the logits, row j's term
      const TileArray row_term = (((s.colwise() - ls_i).exp() - (a.colwise() - lt_i).exp()).colwise() * w_i);
      const TileArray col_term = (((s.rowwise() - ls_j).exp() - (a.rowwise() - lt_j).exp()).rowwise() * w_j);
      const TileArray h = (row_edge.select(row_term, 0.0) + col_edge.select(col_term, 0.0)) * p.inv_tau;
      dx.noalias() +=
          (h.matrix().template cast<G>() * ConstMap<G>(p.s_hat.data() + j0 * p.cs, k, p.cs)).template cast<double>();
    }
    for (std::int64_t i = i0; i < i1; ++i) p.normalise_backward(i, dx.data() + (i - i0) * p.cs, grad + i * p.cs);
  }
}

/// Forward of the InfoNCE form: row_lse[i] = lse of the student-teacher row i.
template <Real G>
std::int64_t graph_infonce_forward_impl(const GraphProblem<G>& p, double* row_lse, double* row_loss) {
  const std::int64_t nb = p.blocks();
  std::int64_t rows = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : rows) if (nb > 1)
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::int64_t i0 = b * p.tile, i1 = std::min(p.n, i0 + p.tile);
    std::vector<OnlineLse<double>> acc(static_cast<std::size_t>(i1 - i0));
    std::vector<double> positive(static_cast<std::size_t>(i1 - i0), 0.0);
    RowMatrix<G> ct;
    TileArray c, e;
    TileMask mask;
    ColVec mx, sum;
    const auto [c0, c1] = p.columns(i0, i1);
    for (std::int64_t j0 = c0; j0 < c1; j0 += p.tile) {
      const std::int64_t j1 = std::min(c1, j0 + p.tile);
      GraphProblem<G>::tile_gemm(p.s_hat.data(), p.t_hat.data(), p.cs, i0, i1, j0, j1, ct);
      c = ct.template cast<double>().array() * p.inv_tau;
      tile_mask(i0, i1, j0, j1, [&](std::int64_t i, std::int64_t j) { return p.mask.nce_edge(i, j, p.n); }, mask);
      tile_row_lse(c, mask, mx, sum, e);
      for (std::int64_t i = i0; i < i1; ++i) {
        OnlineLse<double> part;
        part.max = mx(i - i0);
        part.sum = sum(i - i0);
        acc[std::size_t(i - i0)].merge(part);
        if (i >= j0 && i < j1) positive[std::size_t(i - i0)] = c(i - i0, i - j0);
      }
    }
    for (std::int64_t i = i0; i < i1; ++i) {
      const auto& row = acc[std::size_t(i - i0)];
      row_lse[i] = row.value();
      row_loss[i] = row.empty() ? 0.0 : row.value() - positive[std::size_t(i - i0)];
      rows += row.empty() ? 0 : 1;
    }
  }
  return rows;
}

template <Real G, Real T>
void graph_infonce_backward_impl(const GraphProblem<G>& p, const double* row_lse, const double* w, T* grad) {
  const std::int64_t nb = p.blocks();
#pragma omp parallel for schedule(dynamic) if (nb > 1)
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::int64_t i0 = b * p.tile, i1 = std::min(p.n, i0 + p.tile), m = i1 - i0;
    RowMatrix<G> ct;
    TileArray c, h;
    TileMask mask;
    RowMatrix<double> dx = RowMatrix<double>::Zero(m, p.cs);
    ColVec lse(m), w_i(m);
    for (std::int64_t r = 0; r < m; ++r) {
      lse(r) = safe_lse(row_lse[i0 + r]);
      w_i(r) = w[i0 + r];
    }
    const auto [c0, c1] = p.columns(i0, i1);
    for (std::int64_t j0 = c0; j0 < c1; j0 += p.tile) {
      const std::int64_t j1 = std::min(c1, j0 + p.tile);
      GraphProblem<G>::tile_gemm(p.s_hat.data(), p.t_hat.data(), p.cs, i0, i1, j0, j1, ct);
      c = ct.template cast<double>().array() * p.inv_tau;
      tile_mask(i0, i1, j0, j1, [&](std::int64_t i, std::int64_t j) { return p.mask.nce_edge(i, j, p.n); }, mask);
      h = mask.select(((c.colwise() - lse).exp()).colwise() * w_i, 0.0);  // w_i · softmax_ij
      for (std::int64_t i = std::max(i0, j0); i < std::min(i1, j1); ++i)
        if (mask(i - i0, i - j0)) h(i - i0, i - j0) -= w_i(i - i0);  // − w_i at the positive
      h *= p.inv_tau;
      dx.noalias() += (h.matrix().template cast<G>() * ConstMap<G>(p.t_hat.data() + j0 * p.ct, j1 - j0, p.ct))
                          .template cast<double>();
    }
    for (std::int64_t i = i0; i < i1; ++i) p.normalise_backward(i, dx.data() + (i - i0) * p.cs, grad + i * p.cs);
  }
}

/// Per-row weights dL/dloss_i for a reduction: g / rows (Mean), g (Sum) or g_i (None).
inline std::vector<double> graph_row_weights(Reduction r, std::int64_t n, std::int64_t rows, const double* g) {
  std::vector<double> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    w[std::size_t(i)] = r == Reduction::None ? g[i] : r == Reduction::Sum ? g[0] : (rows > 0 ? g[0] / double(rows) : 0.0);
  return w;
}

template <Real T, Real G, bool InfoNce>
Tensor<T> graph_loss_op(std::string_view op, const Tensor<T>& student, const Tensor<T>& teacher,
                        const GraphKDOptions& o) {
  check_cpu(student, op);
  check_cpu(teacher, op);
  GKD_CHECK(student.dim() == 2 && teacher.dim() == 2 && student.shape()[0] == teacher.shape()[0], op,
            "needs student [N, C_s] and teacher [N, C_t] with the same N, got student "
                << to_string(student.shape()) << " and teacher " << to_string(teacher.shape()));
  const std::int64_t n = student.shape()[0], cs = student.shape()[1], ct = teacher.shape()[1];
  check_graph_kd_args(op, n, cs, ct, o, InfoNce);
  const Tensor<T> sc = student.contiguous_copy_if_needed();
  const Tensor<T> tc = teacher.contiguous_copy_if_needed();
  auto problem = std::make_shared<const GraphProblem<G>>(sc.data(), tc.data(), n, cs, ct, o);
  auto lse = std::make_shared<std::vector<double>>(static_cast<std::size_t>(InfoNce ? n : 2 * n));
  std::vector<double> loss(static_cast<std::size_t>(n));
  const std::int64_t rows = InfoNce ? graph_infonce_forward_impl(*problem, lse->data(), loss.data())
                                    : graph_kd_forward_impl(*problem, lse->data(), loss.data());
  Tensor<T> out;
  if (o.reduction == Reduction::None) {
    out = Tensor<T>::empty({n});
    std::transform(loss.begin(), loss.end(), out.data(), [](double v) { return static_cast<T>(v); });
  } else {
    double total = 0;
    for (double v : loss) total += v;
    if (o.reduction == Reduction::Mean) total = rows > 0 ? total / double(rows) : 0.0;
    out = Tensor<T>::scalar(static_cast<T>(total));
  }
  return record(op, out, {student, teacher}, [problem, lse, rows, r = o.reduction](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    std::vector<double> gd(gc.data(), gc.data() + gc.numel());
    const std::vector<double> w = graph_row_weights(r, problem->n, rows, gd.data());
    Tensor<T> ds = Tensor<T>::empty({problem->n, problem->cs});
    if constexpr (InfoNce)
      graph_infonce_backward_impl(*problem, lse->data(), w.data(), ds.data());
    else
      graph_kd_backward_impl(*problem, lse->data(), w.data(), ds.data());
    return std::vector<Tensor<T>>{ds, Tensor<T>()};
  });
}

/// Runs f(GraphProblem<G>) with G the tile type that the options select for inputs of type T.
template <Real T, class F>
decltype(auto) with_tile_type(const GraphKDOptions& o, F&& f) {
  if constexpr (std::is_same_v<T, float>)
    if (o.fast_float_tiles) return f(float{});
  return f(double{});
}

template <Real T, bool InfoNce>
Tensor<T> graph_loss(std::string_view op, const Tensor<T>& student, const Tensor<T>& teacher, const GraphKDOptions& o) {
  return with_tile_type<T>(o, [&](auto g) { return graph_loss_op<T, decltype(g), InfoNce>(op, student, teacher, o); });
}

}  // namespace detail

/// Relational KL between the teacher's and the student's similarity graphs (see the file comment).
/// Differentiable w.r.t. `student` only; `teacher` is a constant.
/// @throws gkd::Error unless student is [N, C_s] and teacher [N, C_t] (N, C ≥ 1), τ > 0, tile ≥ 1, and
///         for BlockDiagonal / Star masks group_size ≥ 1 divides N
template <Real T>
Tensor<T> graph_kd_loss(const Tensor<T>& student, const Tensor<T>& teacher, const GraphKDOptions& options = {}) {
  return detail::graph_loss<T, false>("graph_kd_loss", student, teacher, options);
}

/// Teacher-student InfoNCE over the mask's columns, the positive being the same node (see the file
/// comment). Differentiable w.r.t. `student` only. Needs C_s == C_t; otherwise as graph_kd_loss.
template <Real T>
Tensor<T> graph_infonce_loss(const Tensor<T>& student, const Tensor<T>& teacher,
                             const GraphKDOptions& options = {}) {
  return detail::graph_loss<T, true>("graph_infonce_loss", student, teacher, options);
}

/// Raw-pointer forward of graph_kd_loss on row-major student [n, cs] and teacher [n, ct]: writes
/// loss_i to row_loss[n] and the two log-sum-exps per row to row_lse[2n] (keep them for backward);
/// returns the number of rows with a loss term (the Mean divisor).
template <Real T>
std::int64_t graph_kd_forward(const T* student, const T* teacher, std::int64_t n, std::int64_t cs, std::int64_t ct,
                              const GraphKDOptions& o, double* row_loss, double* row_lse) {
  detail::check_graph_kd_args("graph_kd_forward", n, cs, ct, o, false);
  return detail::with_tile_type<T>(o, [&](auto g) {
    const detail::GraphProblem<decltype(g)> p(student, teacher, n, cs, ct, o);
    return detail::graph_kd_forward_impl(p, row_lse, row_loss);
  });
}

/// Raw-pointer backward of graph_kd_loss: grad_student[n, cs] = dL/dF_s given row_weight[i] = dL/dloss_i
/// (e.g. 1 / rows for the mean) and the row_lse of graph_kd_forward.
template <Real T>
void graph_kd_backward(const T* student, const T* teacher, std::int64_t n, std::int64_t cs, std::int64_t ct,
                       const GraphKDOptions& o, const double* row_lse, const double* row_weight, T* grad_student) {
  detail::check_graph_kd_args("graph_kd_backward", n, cs, ct, o, false);
  detail::with_tile_type<T>(o, [&](auto g) {
    const detail::GraphProblem<decltype(g)> p(student, teacher, n, cs, ct, o);
    detail::graph_kd_backward_impl(p, row_lse, row_weight, grad_student);
  });
}

/// Raw-pointer forward of graph_infonce_loss (c = cs = ct); row_lse holds n values.
template <Real T>
std::int64_t graph_infonce_forward(const T* student, const T* teacher, std::int64_t n, std::int64_t c,
                                   const GraphKDOptions& o, double* row_loss, double* row_lse) {
  detail::check_graph_kd_args("graph_infonce_forward", n, c, c, o, true);
  return detail::with_tile_type<T>(o, [&](auto g) {
    const detail::GraphProblem<decltype(g)> p(student, teacher, n, c, c, o);
    return detail::graph_infonce_forward_impl(p, row_lse, row_loss);
  });
}

/// Raw-pointer backward of graph_infonce_loss.
template <Real T>
void graph_infonce_backward(const T* student, const T* teacher, std::int64_t n, std::int64_t c,
                            const GraphKDOptions& o, const double* row_lse, const double* row_weight,
                            T* grad_student) {
  detail::check_graph_kd_args("graph_infonce_backward", n, c, c, o, true);
  detail::with_tile_type<T>(o, [&](auto g) {
    const detail::GraphProblem<decltype(g)> p(student, teacher, n, c, c, o);
    detail::graph_infonce_backward_impl(p, row_lse, row_weight, grad_student);
  });
}

namespace reference {

/// Naive materialised graph_kd_loss / graph_infonce_loss (N×N matrices, double arithmetic) for tests:
/// returns loss_i for every row and fills grad_student with ∂(Σ_i w_i loss_i)/∂F_s.
template <Real T>
std::vector<double> graph_loss(const Tensor<T>& student, const Tensor<T>& teacher, const GraphKDOptions& o,
                               bool infonce, const std::vector<double>& w, std::vector<double>& grad_student) {
  const std::int64_t n = student.shape()[0], cs = student.shape()[1], ct = teacher.shape()[1];
  const auto fs = student.to_vector(), ft = teacher.to_vector();
  const detail::MaskSpec m = detail::mask_spec(o.mask);
  const double inv_tau = 1.0 / o.temperature;
  auto normalise = [&](const auto& x, std::int64_t c, std::vector<double>& y, std::vector<double>& norm) {
    y.assign(std::size_t(n * c), 0.0);
    norm.assign(std::size_t(n), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
      double sq = 0;
      for (std::int64_t k = 0; k < c; ++k) sq += double(x[std::size_t(i * c + k)]) * double(x[std::size_t(i * c + k)]);
      norm[std::size_t(i)] = std::sqrt(sq);
      const double d = std::max(std::sqrt(sq), o.eps);
      for (std::int64_t k = 0; k < c; ++k) y[std::size_t(i * c + k)] = double(x[std::size_t(i * c + k)]) / d;
    }
  };
  std::vector<double> sh, th, sn, tn;
  normalise(fs, cs, sh, sn);
  normalise(ft, ct, th, tn);
  auto dot = [](const double* x, const double* y, std::int64_t c) {
    double v = 0;
    for (std::int64_t k = 0; k < c; ++k) v += x[k] * y[k];
    return v;
  };
  const std::size_t nn = std::size_t(n * n);
  std::vector<double> a(nn), b(nn), g(nn, 0.0), loss(std::size_t(n), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const std::size_t e = std::size_t(i * n + j);
      if (infonce) {
        b[e] = dot(&sh[std::size_t(i * cs)], &th[std::size_t(j * ct)], cs) * inv_tau;
      } else {
        a[e] = dot(&th[std::size_t(i * ct)], &th[std::size_t(j * ct)], ct) * inv_tau;
        b[e] = dot(&sh[std::size_t(i * cs)], &sh[std::size_t(j * cs)], cs) * inv_tau;
      }
    }
  for (std::int64_t i = 0; i < n; ++i) {
    auto allowed = [&](std::int64_t j) { return infonce ? m.nce_edge(i, j, n) : m.edge(i, j, n); };
    double ma = -1e300, mb = -1e300;
    bool any = false;
    for (std::int64_t j = 0; j < n; ++j)
      if (allowed(j)) {
        any = true;
        ma = std::max(ma, a[std::size_t(i * n + j)]);
        mb = std::max(mb, b[std::size_t(i * n + j)]);
      }
    if (!any) continue;
    double za = 0, zb = 0;
    for (std::int64_t j = 0; j < n; ++j)
      if (allowed(j)) {
        za += std::exp(a[std::size_t(i * n + j)] - ma);
        zb += std::exp(b[std::size_t(i * n + j)] - mb);
      }
    const double la = ma + std::log(za), lb = mb + std::log(zb);
    for (std::int64_t j = 0; j < n; ++j)
      if (allowed(j)) {
        const std::size_t e = std::size_t(i * n + j);
        const double q = std::exp(b[e] - lb);
        if (infonce) {
          if (j == i) loss[std::size_t(i)] = lb - b[e];
          g[e] = w[std::size_t(i)] * (q - (j == i ? 1.0 : 0.0)) * inv_tau;
        } else {
          const double pa = std::exp(a[e] - la);
          loss[std::size_t(i)] += pa * ((a[e] - la) - (b[e] - lb));
          g[e] = w[std::size_t(i)] * (q - pa) * inv_tau;
        }
      }
  }
  // dŝ = G ŝ + Gᵀ ŝ (KL; both sides are the student) or G t̂ (InfoNCE), then normalize's backward.
  std::vector<double> dsh(std::size_t(n * cs), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const double gij = g[std::size_t(i * n + j)];
      if (gij == 0) continue;
      for (std::int64_t k = 0; k < cs; ++k) {
        if (infonce) {
          dsh[std::size_t(i * cs + k)] += gij * th[std::size_t(j * ct + k)];
        } else {
          dsh[std::size_t(i * cs + k)] += gij * sh[std::size_t(j * cs + k)];
          dsh[std::size_t(j * cs + k)] += gij * sh[std::size_t(i * cs + k)];
        }
      }
    }
  grad_student.assign(std::size_t(n * cs), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    const double nrm = sn[std::size_t(i)];
    const double d = std::max(nrm, o.eps);
    double dt = 0;
    for (std::int64_t k = 0; k < cs; ++k) dt += dsh[std::size_t(i * cs + k)] * sh[std::size_t(i * cs + k)];
    for (std::int64_t k = 0; k < cs; ++k) {
      const double gk = dsh[std::size_t(i * cs + k)];
      grad_student[std::size_t(i * cs + k)] =
          (nrm >= o.eps && nrm > 0) ? (gk - sh[std::size_t(i * cs + k)] * dt) / nrm : gk / (d > 0 ? d : 1.0);
    }
  }
  return loss;
}

}  // namespace reference

}  // namespace gkd

GKD_REGISTER_OPS(graph_kd, "graph_kd_loss", "graph_infonce_loss")
