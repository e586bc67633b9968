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
/// Algorithm (Inf-CL / FlashAttention style): each tile's similarities come from a small GEMM
/// (gkd/ops/gemm.hpp; float tiles on CPUs with AMX from gkd/ops/amx_int8.hpp, their gradient products from
/// gkd/ops/amx_bf16.hpp), rows are merged with the online log-sum-exp of
/// gkd/losses/detail/graph_kd_tile.hpp, and only the two log-sum-exps per row are stored; backward
/// recomputes the tiles from them. The InfoNCE op instead accumulates its gradient in the forward sweep
/// (the teacher is frozen; N × C more memory, 2 N²C multiply-adds in all instead of 3). In the KL form
/// both similarity matrices are symmetric, so each pair of row blocks is computed once and feeds its rows
/// and, transposed, its columns: 3 N²C multiply-adds for forward + backward instead of the 5 of a
/// row-block sweep (the materialised PyTorch formula takes 4, plus its N×N passes); up to 1/τ = 200 one
/// exponential per logit serves both (kMaxSharedShift). Pairs are scheduled as rounds of a round-robin
/// tournament, so parallel tasks never share an output row. The InfoNCE form (not symmetric) sweeps row
/// blocks × column tiles. Many small graphs (BlockDiagonal and Star groups smaller than a tile) run one
/// graph per tile: the tile shrinks to the group and only the diagonal pairs run; the KL op keeps each
/// graph's two logit tiles for the backward (2 N·g doubles) instead of recomputing them. Memory:
/// O(N·C + tile²·threads).
/// Results do not depend on the thread count.
///
/// Raw-pointer entry points (`graph_kd_forward` / `graph_kd_backward`, `graph_infonce_forward` /
/// `graph_infonce_backward`) run the same kernels without tensors or autodiff (their backwards recompute).
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
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "gkd/losses/detail/graph_kd_tile.hpp"
#include "gkd/losses/reduction.hpp"
#include "gkd/ops/amx_bf16.hpp"
#include "gkd/ops/amx_int8.hpp"
#include "gkd/ops/gemm.hpp"
#include "gkd/ops/linalg.hpp"
#include "gkd/ops/vectorised_exp.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/distill_losses.hpp"
#endif

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
  /// Rows and columns per tile (≥ 1; any N works). BlockDiagonal and Star groups of fewer nodes run graph
  /// by graph instead.
  std::int64_t tile = 128;
  double eps = 1e-12;                   ///< norm clamp of the row normalisation
  /// Arithmetic of the similarity tiles for float32 inputs. false (default): float64 tiles, the accurate
  /// oracle (agrees with a float64 evaluation to ~1e-7 relative at any τ). true: float32 tiles, about twice
  /// as fast (3.7x with AMX), with relative errors ≈ 6e-8 · √C / τ in the logits (1e-5 … 1e-4 at τ = 0.01);
  /// on CPUs with AMX their similarities run as int8 fixed point (gkd/ops/amx_int8.hpp) and their
  /// gradient products as bfloat16 parts (gkd/ops/amx_bf16.hpp), with the same accuracy.
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

/// Σ_k x[k] y[k] in double over 16 running sums (one would be bound by the latency of its adds), added in
/// a fixed order: the same result whatever the vector width the build targets.
template <class X, class Y>
double dot_in_double(const X* x, const Y* y, std::int64_t n) {
  double part[16] = {};
  std::int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int l = 0; l < 16; ++l) part[l] += double(x[k + l]) * double(y[k + l]);
  for (int l = 0; k < n; ++k, ++l) part[l] += double(x[k]) * double(y[k]);
  for (int width = 8; width >= 1; width /= 2)
    for (int l = 0; l < width; ++l) part[l] += part[l + width];
  return part[0];
}

/// A tile of logits. The element-wise work (exp, max, row sums) runs row by row on contiguous rows, in
/// double, through Eigen's vectorised array expressions and gkd/ops/vectorised_exp.hpp; rows are then
/// merged into their running state with graph_kd_tile.hpp.
using TileArray = Eigen::Array<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// The row-normalised features of one problem in the tile compute type G, computed once and shared by
/// forward and backward.
template <Real G>
struct GraphProblem {
  std::int64_t n = 0, cs = 0, ct = 0;
  double inv_tau = 1, eps = 0;
  MaskSpec mask;
  std::int64_t tile = 128;
  /// Columns come in segments of `segment` consecutive nodes, and each row has one softmax per segment
  /// (N: one softmax per row, as in graph_kd; pixel_pair_kl: one per image). Row blocks never straddle
  /// a segment boundary. Must divide N.
  std::int64_t segment = 0;
  /// [N, C_s], [N, C_t], in tensor storage: large blocks come from the host cache (gkd/core/host_cache.hpp)
  /// instead of fresh, zero-filled pages on every call
  Tensor<G> s_hat, t_hat;
  std::vector<double> s_norm;     ///< ‖F_s[i]‖ (unclamped)

  template <Real T>
  GraphProblem(const T* fs, const T* ft, std::int64_t n_, std::int64_t cs_, std::int64_t ct_, const GraphKDOptions& o)
      : n(n_), cs(cs_), ct(ct_), inv_tau(1.0 / o.temperature), eps(o.eps), mask(mask_spec(o.mask)), tile(o.tile),
        segment(n_), s_hat(Tensor<G>::empty({n * cs})), t_hat(Tensor<G>::empty({n * ct})),
        s_norm(static_cast<std::size_t>(n)) {
    if ((mask.kind == 1 || mask.kind == 2) && mask.group < tile) tile = mask.group;  // one graph per block
#pragma omp parallel for if (n * (cs + ct) > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      s_norm[std::size_t(i)] = normalise_row(fs + i * cs, s_hat.data() + i * cs, cs);
      normalise_row(ft + i * ct, t_hat.data() + i * ct, ct);
    }
  }
  template <Real T>
  double normalise_row(const T* x, G* y, std::int64_t c) const {
    const double sq = dot_in_double(x, x, c);
    const double inv = inv_row_norm(sq, eps);
    for (std::int64_t k = 0; k < c; ++k) y[k] = static_cast<G>(double(x[k]) * inv);
    return std::sqrt(sq);
  }
  /// Candidate columns [j0, j1) of the rows [i0, i1).
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> columns(std::int64_t i0, std::int64_t i1) const {
    return {mask.col_begin(i0, n), mask.col_end(i1 - 1, n)};
  }
  enum class Side { Student, Teacher };
  [[nodiscard]] const G* hat(Side x) const { return x == Side::Student ? s_hat.data() : t_hat.data(); }
  [[nodiscard]] std::int64_t width(Side x) const { return x == Side::Student ? cs : ct; }
  /// Whether every row block is one whole graph, so that only the diagonal pairs of blocks have edges:
  /// BlockDiagonal and Star groups smaller than the tile option, for which the constructor shrinks the tile
  /// to the group (a 128-row tile would hold 25 stars of 5, and only 5 × 5 of each star's 5 × 133 entries
  /// are edges).
  [[nodiscard]] bool per_graph() const { return (mask.kind == 1 || mask.kind == 2) && segment == n && mask.group == tile; }
  /// Per-graph KL problems: whether the forward keeps each graph's two logit tiles for the backward (the
  /// autodiff op, when a gradient is needed: 2 N·g doubles), which then skips their GEMMs; and the tiles
  /// once kept, [graph][teacher, student][g][g].
  bool keep_graph_logits = false;
  mutable std::vector<double> graph_logits;

#ifdef GKD_AMX
  /// The normalised rows packed for the AMX tile products: int8 digits as left (rows) and right (columns)
  /// operands of similarity tiles (gkd/ops/amx_int8.hpp), bfloat16 parts as right operands of gradient
  /// products (pairs, gkd/ops/amx_bf16.hpp).
  struct AmxCopies {
    AmxDigits rows, columns;
    AmxOperand pairs;
  };
  AmxCopies amx_s, amx_t;
#endif
  [[nodiscard]] bool uses_amx() const {
#ifdef GKD_AMX
    return !amx_s.rows.empty();
#else
    return false;
#endif
  }
  /// Moves the tile products onto AMX where they serve: float tiles, tiles a multiple of 32, tiled (not
  /// per-graph) problems of more than one tile (a single tile costs less than packing its operands: DCGD's
  /// 64 inter-coupling nodes took 0.54 instead of 0.33 ms), rows of at most kAmxInt8MaxDepth channels,
  /// and a CPU with AMX (amx_available). Call once mask and segment are final; `nce`: the InfoNCE form
  /// (student-teacher tiles and teacher products) instead of the KL form.
  void enable_amx(bool nce) {
#ifdef GKD_AMX
    if constexpr (std::is_same_v<G, float>) {
      if (tile % 32 != 0 || n <= tile || per_graph() || std::max(cs, ct) > kAmxInt8MaxDepth || !amx_available())
        return;
      using Layout = AmxDigits::Layout;
      amx_s.rows = AmxDigits(s_hat.data(), n, cs, cs, Layout::Rows);
      if (nce) {
        amx_t.columns = AmxDigits(t_hat.data(), n, ct, ct, Layout::Columns);
        amx_t.pairs = AmxOperand::pairs(t_hat.data(), n, ct, ct);
      } else {
        amx_s.columns = AmxDigits(s_hat.data(), n, cs, cs, Layout::Columns);
        amx_s.pairs = AmxOperand::pairs(s_hat.data(), n, cs, cs);
        amx_t.rows = AmxDigits(t_hat.data(), n, ct, ct, Layout::Rows);
        amx_t.columns = AmxDigits(t_hat.data(), n, ct, ct, Layout::Columns);
      }
      return;
    }
#endif
    (void)nce;
  }

  /// Tiles of at most this many rows and columns take their similarities as single dot products.
  static constexpr std::int64_t kDotTile = 16;
  /// out[r, c] = x̂[i0 + r] · ŷ[j0 + c] for r < i1 − i0, c < j1 − j0 (a tile of x̂ ŷᵀ; same widths).
  void similarity_tile(Side x, Side y, std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1,
                       RowMatrix<G>& out) const {
    out.resize(i1 - i0, j1 - j0);
#ifdef GKD_AMX
    if constexpr (std::is_same_v<G, float>)
      if (uses_amx())
        return amx_similarity_tile((x == Side::Student ? amx_s : amx_t).rows,
                                   (y == Side::Student ? amx_s : amx_t).columns, i0, i1, j0, j1, out.data(), j1 - j0);
#endif
    const std::int64_t c = width(x);
    if (i1 - i0 <= kDotTile && j1 - j0 <= kDotTile) {  // small graphs: a GEMM's packing would cost more
      // a star's entries between two non-anchors are never used (0 here)
      const auto used = [&](std::int64_t i, std::int64_t j) { return mask.kind != 2 || i % mask.group == 0 || j % mask.group == 0; };
      for (std::int64_t i = i0; i < i1; ++i)
        for (std::int64_t j = j0; j < j1; ++j)
          out(i - i0, j - j0) =
              used(i, j) ? ConstMap<G>(hat(x) + i * c, 1, c).row(0).dot(ConstMap<G>(hat(y) + j * c, 1, c).row(0)) : G(0);
      return;
    }
    strided_gemm<G>(i1 - i0, j1 - j0, c, hat(x) + i0 * c, c, 1, hat(y) + j0 * c, 1, c, out.data(), j1 - j0, false);
  }
  /// The same tile as logits in double: out = x̂ ŷᵀ / τ (AMX writes them directly, without a float tile).
  void logit_tile(Side x, Side y, std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1,
                  TileArray& out) const {
    out.resize(i1 - i0, j1 - j0);
#ifdef GKD_AMX
    if constexpr (std::is_same_v<G, float>)
      if (uses_amx())
        return amx_similarity_tile((x == Side::Student ? amx_s : amx_t).rows, (y == Side::Student ? amx_s : amx_t).columns,
                                   i0, i1, j0, j1, out.data(), j1 - j0, inv_tau);
#endif
    thread_local RowMatrix<G> similarity;
    similarity_tile(x, y, i0, i1, j0, j1, similarity);
    out = similarity.template cast<double>().array() * inv_tau;
  }
  /// out[r, ·] += Σ_k h(r, k) ŷ[first + k] (with hᵀ for h when `transposed`), where out's rows have y's width.
  void add_tile_product(const RowMatrix<G>& h, bool transposed, Side y, std::int64_t first, G* out) const {
    const std::int64_t c = width(y);
#ifdef GKD_AMX
    if constexpr (std::is_same_v<G, float>)
      if (uses_amx())
        return amx_add_tile_product(h, transposed, (y == Side::Student ? amx_s : amx_t).pairs, first, c, out);
#endif
    const std::int64_t m = h.rows(), k = h.cols();
    const G* yp = hat(y) + first * c;
    if (m <= kDotTile && k <= kDotTile) {  // small graphs: row updates (a star's h is mostly zero)
      const std::int64_t rows = transposed ? k : m, inner = transposed ? m : k;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < inner; ++j)
          if (const G v = transposed ? h(j, r) : h(r, j); v != G(0))
            Eigen::Map<Eigen::Matrix<G, 1, Eigen::Dynamic>>(out + r * c, c) +=
                v * Eigen::Map<const Eigen::Matrix<G, 1, Eigen::Dynamic>>(yp + j * c, c);
      return;
    }
    if (transposed) strided_gemm<G>(k, c, m, h.data(), 1, k, yp, c, 1, out, c, true);
    else strided_gemm<G>(m, c, k, h.data(), k, 1, yp, c, 1, out, c, true);
  }
  /// dF_s row i = normalize's backward of weight · dx̂ (dx̂ = g, one row of cs values):
  /// weight (dx̂ − ŝ (ŝ · dx̂)) / ‖x‖, or weight · dx̂ / eps for a row whose norm was clamped.
  template <class In, Real T>
  void normalise_backward(std::int64_t i, const In* g, T* out, double weight = 1) const {
    const double nrm = s_norm[std::size_t(i)];
    const G* sh = s_hat.data() + i * cs;
    const bool clamped = !(nrm >= eps && nrm > 0);
    const double dot = clamped ? 0.0 : dot_in_double(g, sh, cs);
    const double scale = weight / (clamped ? (eps > 0 ? eps : 1.0) : nrm);
    for (std::int64_t k = 0; k < cs; ++k) out[k] = static_cast<T>((double(g[k]) - double(sh[k]) * dot) * scale);
  }

  [[nodiscard]] std::int64_t segments() const { return n / segment; }
  [[nodiscard]] std::int64_t blocks_per_segment() const { return (segment + tile - 1) / tile; }
  [[nodiscard]] std::int64_t blocks() const { return segments() * blocks_per_segment(); }
  [[nodiscard]] std::int64_t segment_of(std::int64_t block) const { return block / blocks_per_segment(); }
  /// Rows [i0, i1) of a row block.
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> block_rows(std::int64_t block) const {
    const std::int64_t s0 = segment_of(block) * segment, i0 = s0 + (block % blocks_per_segment()) * tile;
    return {i0, std::min(s0 + segment, i0 + tile)};
  }
};

/// Per-row values of a tile (maxima, sums, log-sum-exps).
using ColVec = Eigen::Array<double, Eigen::Dynamic, 1>;

/// out[k] = min(exp(x[k] − shift), 1) for k < n: the exponentials of a masked row against the maximum (or
/// log-sum-exp) of its edges, which non-edges may exceed; the cap keeps those finite for `keep` to zero
/// them (NaN stays NaN).
inline void exp_shifted_capped(const double* x, double shift, double* out, std::int64_t n) {
  exp_shifted(x, shift, out, n);
  Eigen::Map<Eigen::Array<double, 1, Eigen::Dynamic>> e(out, n);
  e = (e > 1.0).select(1.0, e);
}

/// The edges of a tile twice over: `offset` (0 on an edge, −inf elsewhere) for maxima, and `keep` (1 on an
/// edge, 0 elsewhere) to zero exponentials (Eigen's vectorised exp maps −inf to 2e-308, not to 0).
struct TileEdges {
  TileArray offset, keep;

  /// Entry (r, c) is an edge when edge(i0 + r, j0 + c).
  template <class Edge>
  void set(std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1, Edge&& edge) {
    offset.resize(i1 - i0, j1 - j0);
    keep.resize(i1 - i0, j1 - j0);
    for (std::int64_t i = i0; i < i1; ++i)
      for (std::int64_t j = j0; j < j1; ++j) {
        const bool e = edge(i, j);
        offset(i - i0, j - j0) = e ? 0.0 : -std::numeric_limits<double>::infinity();
        keep(i - i0, j - j0) = e ? 1.0 : 0.0;
      }
  }
  [[nodiscard]] TileEdges transposed() const { return {offset.transpose(), keep.transpose()}; }
};

/// Row-wise online-lse partial of the logit tile x over its edges (all entries when `edges` is null):
/// max (the lowest finite value for rows without edges), Σ exp(x − max) and the exponentials (0 off the
/// edges; min(·, 0) keeps a non-edge above the max, such as a self-loop, from overflowing).
inline void tile_row_lse(const TileArray& x, const TileEdges* edges, ColVec& max, ColVec& sum, TileArray& e) {
  max.resize(x.rows()), sum.resize(x.rows()), e.resize(x.rows(), x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    if (!edges) {
      max(r) = x.row(r).maxCoeff();
      exp_shifted(&x(r, 0), max(r), &e(r, 0), x.cols());
    } else {
      max(r) = (x.row(r) + edges->offset.row(r)).maxCoeff();
      if (max(r) == -std::numeric_limits<double>::infinity()) {
        max(r) = tile_lowest<double>();
        e.row(r).setZero();
      } else {
        exp_shifted_capped(&x(r, 0), max(r), &e(r, 0), x.cols());
        e.row(r) *= edges->keep.row(r);
      }
    }
    sum(r) = e.row(r).sum();
  }
}

/// A saved log-sum-exp made safe for broadcasting (rows without terms hold the lowest value; their
/// entries are masked out, so any finite stand-in works).
inline double safe_lse(double v) { return v == tile_lowest<double>() ? 0.0 : v; }

/// Merges the KL partials of the rows of a teacher tile `a` and a student tile `b` (same edges) into `rows`.
inline void merge_kl_rows(const TileArray& a, const TileArray& b, const TileEdges* edges, KlRow<double>* rows) {
  ColVec mt, st, ms, ss;
  TileArray et, es;
  tile_row_lse(a, edges, mt, st, et);
  tile_row_lse(b, edges, ms, ss, es);
  for (Eigen::Index r = 0; r < a.rows(); ++r) {
    KlRow<double> part;
    part.t.max = mt(r);
    part.t.sum = st(r);
    part.s.max = ms(r);
    part.s.sum = ss(r);
    part.weighted = (et.row(r) * (a.row(r) - b.row(r))).sum();  // et is 0 off the edges
    rows[r].merge(part);
  }
}

/// The largest 1/τ for which the KL tiles take every exponential against one shift, the bound 1/τ of
/// all logits (rows are at most unit length, so logits lie in [−1/τ, 1/τ]): exp(x − 1/τ) then stays
/// within [e^−400, 1], far above double's smallest normal, and the backward's row factors exp(1/τ − lse)
/// within e^400, far below its largest. One exponential per logit serves the tile's rows and its columns
/// (in both passes), instead of one per row maximum and one per column maximum. Below τ = 1/200 the
/// tiles keep their per-row maxima (the code before this constant).
inline constexpr double kMaxSharedShift = 200;

/// merge_kl_rows for every row and, when `cols` is not null, every column of a pair tile, with the
/// exponentials of a and b shifted by `shift` = 1/τ ≤ kMaxSharedShift (computed once per logit), in one
/// pass over the tile: rows are summed as they go, columns into running vectors.
template <class Tile>
void merge_kl_shifted(const Tile& t, double shift, KlRow<double>* rows, KlRow<double>* cols) {
  using Row = Eigen::Array<double, 1, Eigen::Dynamic>;
  thread_local Row ea, eb, weighted, col_t, col_s, col_w;
  if (cols) {
    col_t.setZero(t.a.cols());
    col_s.setZero(t.a.cols());
    col_w.setZero(t.a.cols());
  }
  const auto merge = [shift](KlRow<double>& out, double sum_t, double sum_s, double sum_w) {
    KlRow<double> part;
    part.t.max = part.s.max = shift;
    part.t.sum = sum_t;
    part.s.sum = sum_s;
    part.weighted = sum_w;
    out.merge(part);
  };
  ea.resize(t.a.cols());
  eb.resize(t.a.cols());
  for (Eigen::Index r = 0; r < t.a.rows(); ++r) {
    exp_shifted(&t.a(r, 0), shift, ea.data(), t.a.cols());
    exp_shifted(&t.b(r, 0), shift, eb.data(), t.a.cols());
    weighted = ea * (t.a.row(r) - t.b.row(r));
    if (!t.masked) {
      merge(rows[r], ea.sum(), eb.sum(), weighted.sum());
      if (cols) col_t += ea, col_s += eb, col_w += weighted;
    } else {
      const auto keep_row = t.row_mask.keep.row(r);
      merge(rows[r], (ea * keep_row).sum(), (eb * keep_row).sum(), (weighted * keep_row).sum());
      const auto keep_col = t.col_mask.keep.row(r);  // (r, c): the edge of column c's node to row r's node
      if (cols) col_t += ea * keep_col, col_s += eb * keep_col, col_w += weighted * keep_col;
    }
  }
  if (cols)
    for (Eigen::Index c = 0; c < t.a.cols(); ++c) merge(cols[c], col_t(c), col_s(c), col_w(c));
}

/// Calls f(ib, jb) once for every pair of row blocks ib ≤ jb < nb: first the diagonal pairs, then nb − 1
/// (or nb) rounds of a round-robin tournament (circle method), in which no block appears twice. The
/// pairs of one round run in parallel without sharing a block, and every block sees its pairs in the
/// same order whatever the thread count, so results do not depend on it. The tiles' GEMMs always run
/// inside the parallel region, so Eigen never parallelises (and spin-waits on) a single small tile.
/// `diagonal_only`: only the pairs (b, b) (per-graph problems, whose other pairs have no edge).
template <class F>
void for_each_block_pair(std::int64_t nb, bool diagonal_only, F&& f) {
  const std::int64_t m = diagonal_only ? 0 : nb + (nb & 1);  // an even count: block nb is a bye when nb is odd
#pragma omp parallel
  {
#pragma omp for schedule(dynamic)
    for (std::int64_t b = 0; b < nb; ++b) f(b, b);
    for (std::int64_t round = 0; round + 1 < m; ++round) {
#pragma omp for schedule(dynamic)
      for (std::int64_t k = 0; k < m / 2; ++k) {
        const std::int64_t x = k == 0 ? m - 1 : (round + k) % (m - 1);
        const std::int64_t y = k == 0 ? round : (round - k + m - 1) % (m - 1);
        if (x < nb && y < nb) f(std::min(x, y), std::max(x, y));
      }
    }
  }
}

/// The teacher and student logit tiles of the row blocks (ib, jb) and their edges in the row direction
/// (edge(i, j)) and the column direction (edge(j, i)); edges are null when every entry is one. load() is
/// false when the pair has no edge at all.
template <Real G>
struct KlPairTile {
  std::int64_t i0 = 0, i1 = 0, j0 = 0, j1 = 0;
  TileArray a, b;
  TileEdges row_mask, col_mask;
  bool masked = false;
  MaskSpec graph_edges{-1};  ///< the mask whose per-graph edges row_mask and col_mask hold (kind −1: none)

  /// `kept`: with p.keep_graph_logits, the forward keeps a per-graph problem's tiles (keep), and the
  /// backward reads them back (reuse) instead of recomputing them.
  enum class Kept { No, Keep, Reuse };
  bool load(const GraphProblem<G>& p, std::int64_t ib, std::int64_t jb, Kept kept = Kept::No) {
    std::tie(i0, i1) = p.block_rows(ib);
    std::tie(j0, j1) = p.block_rows(jb);
    const auto [ri0, ri1] = p.columns(i0, i1);
    const auto [rj0, rj1] = p.columns(j0, j1);
    if ((ri1 <= j0 || ri0 >= j1) && (rj1 <= i0 || rj0 >= i1)) return false;
    using Side = typename GraphProblem<G>::Side;
    const std::int64_t g = i1 - i0;
    double* saved = p.keep_graph_logits && kept != Kept::No ? p.graph_logits.data() + 2 * g * i0 : nullptr;
    if (saved && kept == Kept::Reuse) {
      a = Eigen::Map<const TileArray>(saved, g, g);
      b = Eigen::Map<const TileArray>(saved + g * g, g, g);
    } else {
      p.logit_tile(Side::Teacher, Side::Teacher, i0, i1, j0, j1, a);
      p.logit_tile(Side::Student, Side::Student, i0, i1, j0, j1, b);
      if (saved) std::copy_n(b.data(), g * g, std::copy_n(a.data(), g * g, saved));
    }
    masked = p.mask.kind == 1 || p.mask.kind == 2 || (p.mask.kind == 0 && ib == jb);
    // the blocks of a per-graph problem all have the same edges
    const bool same_edges = p.per_graph() && graph_edges.kind == p.mask.kind && graph_edges.group == p.mask.group;
    if (masked && !same_edges) {
      row_mask.set(i0, i1, j0, j1, [&](std::int64_t i, std::int64_t j) { return p.mask.edge(i, j, p.n); });
      col_mask.set(i0, i1, j0, j1, [&](std::int64_t i, std::int64_t j) { return p.mask.edge(j, i, p.n); });
      graph_edges = p.per_graph() ? p.mask : MaskSpec{-1};
    }
    return true;
  }
  [[nodiscard]] const TileEdges* row_edges() const { return masked ? &row_mask : nullptr; }
};

/// Forward of the KL form, for row i's softmax over column segment k (one segment unless p.segment < N):
/// row_lse[2(kN + i)] = lse of its teacher logits, row_lse[2(kN + i) + 1] = of its student logits (2N ·
/// segments values); row_loss[i] = Σ_k loss_ik. Returns the number of (row, segment) loss terms. Both
/// similarity matrices are symmetric, so each pair of row blocks is computed once and feeds its rows
/// and, transposed, its columns.
template <Real G>
std::int64_t graph_kd_forward_impl(const GraphProblem<G>& p, double* row_lse, double* row_loss) {
  std::vector<KlRow<double>> acc(static_cast<std::size_t>(p.n * p.segments()));  // [segment][row]
  if (p.keep_graph_logits) p.graph_logits.resize(static_cast<std::size_t>(2 * p.n * p.tile));
  for_each_block_pair(p.blocks(), p.per_graph(), [&](std::int64_t ib, std::int64_t jb) {
    thread_local KlPairTile<G> t;  // reused: tiles above malloc's mmap threshold would fault on every pair
    if (!t.load(p, ib, jb, KlPairTile<G>::Kept::Keep)) return;
    KlRow<double>* rows = acc.data() + p.segment_of(jb) * p.n + t.i0;
    if (p.inv_tau <= kMaxSharedShift)
      return merge_kl_shifted(t, p.inv_tau, rows, ib == jb ? nullptr : acc.data() + p.segment_of(ib) * p.n + t.j0);
    merge_kl_rows(t.a, t.b, t.row_edges(), rows);
    if (ib == jb) return;
    const TileEdges col_edges = t.masked ? t.col_mask.transposed() : TileEdges();
    merge_kl_rows(t.a.transpose(), t.b.transpose(), t.masked ? &col_edges : nullptr,
                  acc.data() + p.segment_of(ib) * p.n + t.j0);
  });
  std::int64_t terms = 0;
  std::fill(row_loss, row_loss + p.n, 0.0);
  for (std::size_t k = 0; k < acc.size(); ++k) {
    const auto& row = acc[k];
    row_lse[2 * k] = row.t.value();
    row_lse[2 * k + 1] = row.s.value();
    row_loss[std::int64_t(k) % p.n] += row.loss();
    terms += row.empty() ? 0 : 1;
  }
  return terms;
}

/// Backward of the KL form: grad = dL/dF_s given w_i = dL/dloss_i. Per pair of row blocks, the tile
/// H = (G + Gᵀ)/τ, G[i, j] = w_i (q_ij − p_ij), adds H F̂_s[j] to rows i and Hᵀ F̂_s[i] to rows j.
template <Real G, Real T>
void graph_kd_backward_impl(const GraphProblem<G>& p, const double* row_lse, const double* w, T* grad) {
  // dŝ: of every row, summed over its pairs; per-graph problems finish each block's rows in its one pair
  const bool per_graph = p.per_graph();
  RowMatrix<G> dx;
  if (!per_graph) dx.setZero(p.n, p.cs);
  for_each_block_pair(p.blocks(), per_graph, [&](std::int64_t ib, std::int64_t jb) {
    thread_local KlPairTile<G> t;  // reused: tiles above malloc's mmap threshold would fault on every pair
    if (!t.load(p, ib, jb, KlPairTile<G>::Kept::Reuse)) return;
    const std::int64_t m = t.i1 - t.i0, k = t.j1 - t.j0;
    // rows i see the segment of block jb, rows j that of block ib
    const double* lse_i = row_lse + 2 * p.segment_of(jb) * p.n;
    const double* lse_j = row_lse + 2 * p.segment_of(ib) * p.n;
    Eigen::Array<double, 1, Eigen::Dynamic> lt_j(k), ls_j(k), w_j(k);
    for (std::int64_t c = 0; c < k; ++c) {
      lt_j(c) = safe_lse(lse_j[2 * (t.j0 + c)]);
      ls_j(c) = safe_lse(lse_j[2 * (t.j0 + c) + 1]);
      w_j(c) = w[t.j0 + c];
    }
    // hg = H/τ in the tile type, H[i, j] = w_i (q_ij − p_ij) + w_j (q_ji − p_ji)
    thread_local RowMatrix<G> hg;
    hg.resize(m, k);
    if (p.inv_tau <= kMaxSharedShift) {
      // one exponential per logit (see kMaxSharedShift): q_ij = e^(b_ij − 1/τ) e^(1/τ − lse_s,i), and so on;
      // the factors carry w and 1/τ
      const double shift = p.inv_tau;
      thread_local Eigen::Array<double, 1, Eigen::Dynamic> ea, eb;
      ea.resize(k);
      eb.resize(k);
      const Eigen::Array<double, 1, Eigen::Dynamic> ws_j = w_j * (shift - ls_j).exp() * shift,
                                                    wt_j = w_j * (shift - lt_j).exp() * shift;
      for (std::int64_t r = 0; r < m; ++r) {
        const std::int64_t i = t.i0 + r;
        const double ws_i = w[i] * std::exp(shift - safe_lse(lse_i[2 * i + 1])) * shift;
        const double wt_i = w[i] * std::exp(shift - safe_lse(lse_i[2 * i])) * shift;
        exp_shifted(&t.a(r, 0), shift, ea.data(), k);
        exp_shifted(&t.b(r, 0), shift, eb.data(), k);
        if (!t.masked)
          hg.row(r) = (eb * (ws_i + ws_j) - ea * (wt_i + wt_j)).matrix().template cast<G>();
        else
          hg.row(r) = ((eb * ws_i - ea * wt_i) * t.row_mask.keep.row(r) + (eb * ws_j - ea * wt_j) * t.col_mask.keep.row(r))
                          .matrix()
                          .template cast<G>();
      }
    } else {
      thread_local TileArray h;
      h.resize(m, k);
      // q − p of row i at (i, j) and of row j at (j, i); on masked tiles min(·, 0) keeps non-edges finite
      // (edges never exceed their row's lse) and `keep` zeroes them.
      for (std::int64_t r = 0; r < m; ++r) {
        const std::int64_t i = t.i0 + r;
        const auto a = t.a.row(r), b = t.b.row(r);
        const double ls_i = safe_lse(lse_i[2 * i + 1]), lt_i = safe_lse(lse_i[2 * i]);
        if (!t.masked) {
          h.row(r) = ((b - ls_i).exp() - (a - lt_i).exp()) * w[i] + ((b - ls_j).exp() - (a - lt_j).exp()) * w_j;
        } else {
          h.row(r) = ((b - ls_i).min(0.0).exp() - (a - lt_i).min(0.0).exp()) * (t.row_mask.keep.row(r) * w[i]) +
                     ((b - ls_j).min(0.0).exp() - (a - lt_j).min(0.0).exp()) * (t.col_mask.keep.row(r) * w_j);
        }
      }
      hg = (h * p.inv_tau).matrix().template cast<G>();
    }
    const auto student = GraphProblem<G>::Side::Student;
    if (per_graph) {
      thread_local RowMatrix<G> rows;
      rows.setZero(m, p.cs);
      p.add_tile_product(hg, false, student, t.j0, rows.data());
      for (std::int64_t r = 0; r < m; ++r) p.normalise_backward(t.i0 + r, rows.row(r).data(), grad + (t.i0 + r) * p.cs);
      return;
    }
    p.add_tile_product(hg, false, student, t.j0, dx.data() + t.i0 * p.cs);
    if (ib != jb) p.add_tile_product(hg, true, student, t.i0, dx.data() + t.j0 * p.cs);
  });
  if (per_graph) return;
#pragma omp parallel for if (p.n * p.cs > kParallelGrain)
  for (std::int64_t i = 0; i < p.n; ++i) p.normalise_backward(i, dx.row(i).data(), grad + i * p.cs);
}

/// Whether every entry of the tile rows [i0, i1) × columns [j0, j1) is a column of its row in the InfoNCE
/// form (no edge mask needed): all rows active, and the columns inside every row's range (col_begin and
/// col_end never decrease with the row).
inline bool all_nce_edges(const MaskSpec& m, std::int64_t n, std::int64_t i0, std::int64_t i1, std::int64_t j0,
                          std::int64_t j1) {
  return (m.kind != 2 || m.group == 1) && j0 >= m.col_begin(i1 - 1, n) && j1 <= m.col_end(i0, n);
}

/// Forward of the InfoNCE form: row_lse[i] = lse of the student-teacher row i. With `direction` (N × C)
/// it also computes the gradient in the same sweep, since the teacher is frozen:
/// direction[i] = ∂loss_i/∂ŝ_i = Σ_{j≠i} softmax_ij (t̂_j − t̂_i) / τ (0 for rows without a term),
/// accumulated FlashAttention style (each tile's exponentials times its teacher rows, rescaled to the
/// running row maximum), so that backward is only w_i · direction[i] through the normalisation: 2 N²C
/// multiply-adds for forward + backward instead of 3. The positive's own term is left out of both sums
/// rather than subtracted at the end: at small τ its softmax rounds to 1 and Σ_j softmax_ij t̂_j − t̂_i
/// would cancel to 0 a gradient that is merely small.
template <Real G>
std::int64_t graph_infonce_forward_impl(const GraphProblem<G>& p, double* row_lse, double* row_loss,
                                        G* direction = nullptr) {
  const std::int64_t nb = p.blocks();
  std::int64_t rows = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : rows)  // even for one block: see for_each_block_pair
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::int64_t i0 = b * p.tile, i1 = std::min(p.n, i0 + p.tile), m = i1 - i0;
    std::vector<OnlineLse<double>> acc(static_cast<std::size_t>(m));
    std::vector<double> positive(static_cast<std::size_t>(m), 0.0);
    TileArray c, e;
    TileEdges edges;
    ColVec mx, sum;
    RowMatrix<G> weighted;  // Σ_{j≠i} exp(c_ij − acc[i].max) t̂_j
    ColVec others;          // Σ_{j≠i} exp(c_ij − acc[i].max)
    if (direction) weighted.setZero(m, p.ct), others.setZero(m);
    const auto [c0, c1] = p.columns(i0, i1);
    for (std::int64_t j0 = c0; j0 < c1; j0 += p.tile) {
      const std::int64_t j1 = std::min(c1, j0 + p.tile);
      p.logit_tile(GraphProblem<G>::Side::Student, GraphProblem<G>::Side::Teacher, i0, i1, j0, j1, c);
      const bool dense = all_nce_edges(p.mask, p.n, i0, i1, j0, j1);
      if (!dense) edges.set(i0, i1, j0, j1, [&](std::int64_t i, std::int64_t j) { return p.mask.nce_edge(i, j, p.n); });
      tile_row_lse(c, dense ? nullptr : &edges, mx, sum, e);
      for (std::int64_t r = 0; r < m; ++r) {
        auto& row = acc[std::size_t(r)];
        const bool has_positive = i0 + r >= j0 && i0 + r < j1;
        if (has_positive) positive[std::size_t(r)] = c(r, i0 + r - j0);
        if (direction) {  // the row's sums so far and the tile's exponentials, all to the merged maximum
          const double top = std::max(row.max, mx(r));
          if (row.max != top) {
            weighted.row(r) *= static_cast<G>(std::exp(row.max - top));
            others(r) *= std::exp(row.max - top);
          }
          if (mx(r) != top) e.row(r) *= std::exp(mx(r) - top);
          if (has_positive) e(r, i0 + r - j0) = 0;
          others(r) += e.row(r).sum();
        }
        row.merge({mx(r), sum(r)});
      }
      if (direction)
        p.add_tile_product(e.matrix().template cast<G>(), false, GraphProblem<G>::Side::Teacher, j0, weighted.data());
    }
    for (std::int64_t r = 0; r < m; ++r) {
      const auto& row = acc[std::size_t(r)];
      row_lse[i0 + r] = row.value();
      row_loss[i0 + r] = row.empty() ? 0.0 : row.value() - positive[std::size_t(r)];
      rows += row.empty() ? 0 : 1;
      if (!direction) continue;
      G* d = direction + (i0 + r) * p.ct;
      const double inv_sum = 1.0 / row.sum;
      const G* t = p.t_hat.data() + (i0 + r) * p.ct;
      for (std::int64_t k = 0; k < p.ct; ++k)
        d[k] = row.empty() ? G(0) : static_cast<G>((double(weighted(r, k)) - others(r) * double(t[k])) * inv_sum * p.inv_tau);
    }
  }
  return rows;
}

/// Backward of the InfoNCE form from the forward's `direction`: dF_s[i] = normalize's backward of w_i · direction[i].
template <Real G, Real T>
void graph_infonce_backward_from_direction(const GraphProblem<G>& p, const G* direction, const double* w, T* grad) {
#pragma omp parallel for if (p.n * p.cs > kParallelGrain)
  for (std::int64_t i = 0; i < p.n; ++i) p.normalise_backward(i, direction + i * p.cs, grad + i * p.cs, w[i]);
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
  auto built = std::make_shared<GraphProblem<G>>(sc.data(), tc.data(), n, cs, ct, o);
  built->enable_amx(InfoNce);
  const bool backward = needs_grad(student) && grad_enabled();
  built->keep_graph_logits = !InfoNce && built->per_graph() && backward;
  std::shared_ptr<const GraphProblem<G>> problem = std::move(built);
  auto lse = std::make_shared<std::vector<double>>(static_cast<std::size_t>(InfoNce ? n : 2 * n));
  std::vector<double> loss(static_cast<std::size_t>(n));
  // InfoNCE computes its gradient in the forward sweep (graph_infonce_forward_impl)
  Tensor<G> direction;
  if (InfoNce && backward) direction = Tensor<G>::empty({n * cs});
  const std::int64_t rows =
      InfoNce ? graph_infonce_forward_impl(*problem, lse->data(), loss.data(), direction.defined() ? direction.data() : nullptr)
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
  return record(op, out, {student, teacher}, [problem, lse, direction, rows, r = o.reduction](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    std::vector<double> gd(gc.data(), gc.data() + gc.numel());
    const std::vector<double> w = graph_row_weights(r, problem->n, rows, gd.data());
    Tensor<T> ds = Tensor<T>::empty({problem->n, problem->cs});
    if constexpr (InfoNce)
      graph_infonce_backward_from_direction(*problem, direction.data(), w.data(), ds.data());
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
  GKD_CUDA_DISPATCH(dispatch_device(student.device(), teacher.device()), op, graph_loss(student, teacher, o, InfoNce));
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
    detail::GraphProblem<decltype(g)> p(student, teacher, n, cs, ct, o);
    p.enable_amx(false);
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
    detail::GraphProblem<decltype(g)> p(student, teacher, n, cs, ct, o);
    p.enable_amx(false);
    detail::graph_kd_backward_impl(p, row_lse, row_weight, grad_student);
  });
}

/// Raw-pointer forward of graph_infonce_loss (c = cs = ct); row_lse holds n values.
template <Real T>
std::int64_t graph_infonce_forward(const T* student, const T* teacher, std::int64_t n, std::int64_t c,
                                   const GraphKDOptions& o, double* row_loss, double* row_lse) {
  detail::check_graph_kd_args("graph_infonce_forward", n, c, c, o, true);
  return detail::with_tile_type<T>(o, [&](auto g) {
    detail::GraphProblem<decltype(g)> p(student, teacher, n, c, c, o);
    p.enable_amx(true);
    return detail::graph_infonce_forward_impl(p, row_lse, row_loss);
  });
}

/// Raw-pointer backward of graph_infonce_loss: recomputes the forward's sweep with its gradient (as the op
/// does in its forward), so row_lse is not read; it is taken for the same form as graph_kd_backward.
template <Real T>
void graph_infonce_backward(const T* student, const T* teacher, std::int64_t n, std::int64_t c,
                            const GraphKDOptions& o, const double* row_lse, const double* row_weight,
                            T* grad_student) {
  detail::check_graph_kd_args("graph_infonce_backward", n, c, c, o, true);
  (void)row_lse;
  detail::with_tile_type<T>(o, [&](auto g) {
    using G = decltype(g);
    detail::GraphProblem<G> p(student, teacher, n, c, c, o);
    p.enable_amx(true);
    std::vector<double> lse(static_cast<std::size_t>(n)), loss(static_cast<std::size_t>(n));
    std::vector<G> direction(static_cast<std::size_t>(n * c));
    detail::graph_infonce_forward_impl(p, lse.data(), loss.data(), direction.data());
    detail::graph_infonce_backward_from_direction(p, direction.data(), row_weight, grad_student);
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
          // at the positive, q − 1 = −Σ_{j≠i} q_j: summed rather than cancelled (q rounds to 1 at small τ)
          if (j == i) {
            loss[std::size_t(i)] = lb - b[e];
          } else {
            g[e] = w[std::size_t(i)] * q * inv_tau;
            g[std::size_t(i * n + i)] -= g[e];
          }
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
