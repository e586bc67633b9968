// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The per-graph mathematics of the graph-contrastive distillation loss for a graph small enough to be
/// held whole (the SmallGraphs schedule of gkd/cuda/graph_kd.hpp: one CUDA block per graph), written on
/// the graph's raw Gram matrices so that no normalised copy of the features is ever stored:
///   ŝ_i · ŝ_j = (x_i · x_j) ν_i ν_j,  ν_i = 1 / max(‖x_i‖, eps).
/// Plain C++ marked `GKD_HOST_DEVICE`: the kernel runs these functions one thread per row, and the CPU
/// test (tests/losses/test_graph_kd_small.cpp) runs them row after row against the naive materialised loss.
///
/// With G_ij = w_i ∂loss_i/∂logit_ij / τ (zero off the graph's edges) and y = the student rows (KL) or the
/// teacher rows (InfoNCE), the gradient of the student's raw rows is
///   ∂L/∂x_i = Σ_j M_ij y_j + D_i x_i,  M_ij = c_i H_ij ν^y_j,  D_i = −c_i ν_i Σ_j H_ij (ŝ_i · ŷ_j),
/// H = G + Gᵀ (KL: both similarities of a pair hold student rows) or H = G (InfoNCE), c_i = 1/‖x_i‖, and
/// for a row whose norm was clamped to eps: c_i = 1/eps and D_i = 0 (the normalisation's backward).
/// @code
///   gkd::detail::SmallGraph<double> g{...};  // Grams and inverse norms of one graph
///   for (int i = 0; i < g.size; ++i) { auto row = g.kl_row(i); loss += row.loss(); }
/// @endcode
#include <cstdint>

#include "gkd/core/host_device.hpp"
#include "gkd/losses/detail/graph_kd_tile.hpp"

namespace gkd::detail {

/// The row statistics of the InfoNCE form: the online log-sum-exp of the logits and the positive's logit.
template <class A>
struct NceRow {
  OnlineLse<A> lse;
  A positive = 0;

  /// lse(c) − c_i; 0 for a row without columns.
  [[nodiscard]] GKD_HOST_DEVICE A loss() const { return lse.empty() ? A(0) : lse.value() - positive; }
};

/// One graph of `size` nodes, global rows first … first + size − 1 of an n-row problem, as raw Grams.
/// Matrices are row-major with leading dimension `ld`:
///   gram_a: KL: the teacher Gram T Tᵀ; InfoNCE: unused (may be null);
///   gram_b: KL: the student Gram S Sᵀ; InfoNCE: the cross Gram S Tᵀ.
/// inv_s, inv_t: 1 / max(‖row‖, eps) of the student and teacher rows; norm_s: ‖row‖ of the student rows.
template <class A>
struct SmallGraph {
  int size = 0;
  int ld = 0;
  std::int64_t first = 0, n = 0;
  MaskSpec mask;
  A inv_tau = 1;
  bool nce = false;
  A eps = 0;
  const A* gram_a = nullptr;
  const A* gram_b = nullptr;
  const A* inv_s = nullptr;
  const A* inv_t = nullptr;
  const A* norm_s = nullptr;

  /// Teacher logit ŝ^t_i · ŝ^t_j / τ (KL).
  [[nodiscard]] GKD_HOST_DEVICE A logit_a(int i, int j) const { return gram_a[i * ld + j] * inv_t[i] * inv_t[j] * inv_tau; }
  /// Student logit (KL: ŝ_i · ŝ_j / τ; InfoNCE: ŝ_i · t̂_j / τ).
  [[nodiscard]] GKD_HOST_DEVICE A logit_b(int i, int j) const { return similarity(i, j) * inv_tau; }
  /// ŝ_i · ŷ_j (y = student for KL, teacher for InfoNCE).
  [[nodiscard]] GKD_HOST_DEVICE A similarity(int i, int j) const {
    return gram_b[i * ld + j] * inv_s[i] * (nce ? inv_t[j] : inv_s[j]);
  }
  [[nodiscard]] GKD_HOST_DEVICE bool edge(int i, int j) const {
    return nce ? mask.nce_edge(first + i, first + j, n) : mask.edge(first + i, first + j, n);
  }

  /// KL statistics of row i (empty for a row without edges).
  [[nodiscard]] GKD_HOST_DEVICE KlRow<A> kl_row(int i) const {
    KlRow<A> row;
    for (int j = 0; j < size; ++j)
      if (edge(i, j)) row.add(logit_a(i, j), logit_b(i, j));
    return row;
  }
  /// InfoNCE statistics of row i (its positive is column i).
  [[nodiscard]] GKD_HOST_DEVICE NceRow<A> nce_row(int i) const {
    NceRow<A> row;
    for (int j = 0; j < size; ++j) {
      if (!edge(i, j)) continue;
      row.lse.add(logit_b(i, j));
      if (j == i) row.positive = logit_b(i, j);
    }
    return row;
  }
  /// Writes row i of G into g[i · ld + j] for every j: w_i ∂loss_i/∂logit_ij / τ, zero off the edges.
  /// lse_a, lse_b: the row's teacher and student log-sum-exps (KL), or its log-sum-exp in lse_b (InfoNCE).
  /// InfoNCE's positive gets −Σ_{j≠i} softmax_ij rather than softmax_ii − 1, which rounds to 0 once the
  /// positive dominates and leaves the gradient without its −(1 − softmax_ii) t̂_i term.
  GKD_HOST_DEVICE void coefficients(int i, A lse_a, A lse_b, A weight, A* g) const {
    const A w = weight * inv_tau;
    A others = 0;  // InfoNCE: Σ_{j≠i} softmax_ij over the row's edges
    for (int j = 0; j < size; ++j) {
      A v = 0;
      if (edge(i, j) && !nce) {
        v = w * kl_grad_coef(logit_a(i, j), logit_b(i, j), lse_a, lse_b);
      } else if (edge(i, j) && j != i) {
        const A p = infonce_grad_coef(logit_b(i, j), lse_b, false);
        others += p;
        v = w * p;
      }
      g[i * ld + j] = v;
    }
    if (nce && edge(i, i)) g[i * ld + i] = -w * others;
  }
  /// Row i of the gradient's coefficients from G (all rows of it, written by coefficients()): m[j] = M_ij
  /// for every j (m may alias row i of gram_b: each similarity is read before its slot is written); returns D_i.
  GKD_HOST_DEVICE A gradient_row(int i, const A* g, A* m) const {
    auto h = [&](int j) { return nce ? g[i * ld + j] : g[i * ld + j] + g[j * ld + i]; };
    A dot = 0;
    for (int j = 0; j < size; ++j) dot += h(j) * similarity(i, j);
    const A norm = norm_s[i];
    const bool clamped = !(norm >= eps && norm > A(0));
    const A c = clamped ? A(1) / (eps > A(0) ? eps : A(1)) : A(1) / norm;
    for (int j = 0; j < size; ++j) m[j] = c * h(j) * (nce ? inv_t[j] : inv_s[j]);
    return clamped ? A(0) : -c * inv_s[i] * dot;
  }
};

}  // namespace gkd::detail
