// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The per-tile mathematics of the graph-contrastive distillation loss (gkd/losses/graph_kd.hpp),
/// shared by the tiled CPU op and the CUDA kernels (kernels/graph_kd/): plain C++ marked
/// `GKD_HOST_DEVICE`, no CUDA header, so the CPU tests exercise the code the GPU runs.
///
/// For one row i with teacher logits a_j and student logits b_j over its allowed columns j:
///   p = softmax(a), q = softmax(b),  KL_i = Σ_j p_j (a_j − b_j) − lse(a) + lse(b)
///   ∂KL_i / ∂b_j = q_j − p_j = exp(b_j − lse(b)) − exp(a_j − lse(a))
/// and for the InfoNCE row loss L_i = lse(c) − c_i (c the student-teacher logits, c_i the positive):
///   ∂L_i / ∂c_j = exp(c_j − lse(c)) − [j = i].
/// Rows are consumed column tile by column tile with an online log-sum-exp (running max and sum;
/// merging rescales both sums to the larger max), so no row is ever stored whole.
/// @code
///   gkd::detail::KlRow<double> row;
///   for (int j = 0; j < n; ++j) row.add(a[j], b[j]);
///   double kl = row.loss();
/// @endcode
#include <cfloat>
#include <cstdint>
#include <math.h>

#include "gkd/core/host_device.hpp"

namespace gkd::detail {

GKD_HOST_DEVICE inline float tile_exp(float x) { return ::expf(x); }
GKD_HOST_DEVICE inline double tile_exp(double x) { return ::exp(x); }
GKD_HOST_DEVICE inline float tile_log(float x) { return ::logf(x); }
GKD_HOST_DEVICE inline double tile_log(double x) { return ::log(x); }
/// The most negative finite value: the max of an empty row (exp(x − lowest) is 0, never NaN).
template <class A>
GKD_HOST_DEVICE constexpr A tile_lowest() {
  return sizeof(A) == sizeof(float) ? A(-FLT_MAX) : A(-DBL_MAX);
}

/// Online log-sum-exp of a stream of values: max m and Σ exp(x − m).
template <class A>
struct OnlineLse {
  A max = tile_lowest<A>();
  A sum = 0;

  /// Adds one value.
  GKD_HOST_DEVICE void add(A x) {
    if (x > max) {
      sum = sum * tile_exp(max - x) + A(1);
      max = x;
    } else {
      sum += tile_exp(x - max);
    }
  }
  /// Merges another partial state (associative and commutative up to rounding).
  GKD_HOST_DEVICE void merge(const OnlineLse& o) {
    if (o.max > max) {
      sum = sum * tile_exp(max - o.max) + o.sum;
      max = o.max;
    } else {
      sum += o.sum * tile_exp(o.max - max);
    }
  }
  /// True when no value was added (a NaN sum is not empty: NaN inputs give NaN losses, not missing rows).
  [[nodiscard]] GKD_HOST_DEVICE bool empty() const { return sum == A(0); }
  /// log Σ exp(x); the lowest finite value for an empty stream.
  [[nodiscard]] GKD_HOST_DEVICE A value() const { return empty() ? tile_lowest<A>() : max + tile_log(sum); }
};

/// Running state of one KL row: online lse of the teacher logits a and of the student logits b, and
/// W = Σ exp(a_j − max_a)(a_j − b_j), rescaled with max_a, so that Σ p_j (a_j − b_j) = W / sum_a.
template <class A>
struct KlRow {
  OnlineLse<A> t, s;
  A weighted = 0;

  GKD_HOST_DEVICE void add(A a, A b) {
    if (a > t.max) {
      const A r = tile_exp(t.max - a);
      weighted = weighted * r + (a - b);
      t.sum = t.sum * r + A(1);
      t.max = a;
    } else {
      weighted += tile_exp(a - t.max) * (a - b);
      t.sum += tile_exp(a - t.max);
    }
    s.add(b);
  }
  GKD_HOST_DEVICE void merge(const KlRow& o) {
    if (o.t.max > t.max) {
      const A r = tile_exp(t.max - o.t.max);
      weighted = weighted * r + o.weighted;
      t.sum = t.sum * r + o.t.sum;
      t.max = o.t.max;
    } else {
      const A r = tile_exp(o.t.max - t.max);
      weighted += o.weighted * r;
      t.sum += o.t.sum * r;
    }
    s.merge(o.s);
  }
  [[nodiscard]] GKD_HOST_DEVICE bool empty() const { return t.empty(); }
  /// KL(p ‖ q) of the row; 0 for a row without columns.
  [[nodiscard]] GKD_HOST_DEVICE A loss() const {
    if (empty()) return A(0);
    const A kl = weighted / t.sum - t.value() + s.value();
    return kl < A(0) ? A(0) : kl;  // ≥ 0 mathematically; rounding may give −1e-16 (NaN stays NaN)
  }
};

/// Merges two partial states (OnlineLse, KlRow): the operator of a block-wide or parallel reduction.
struct MergeStates {
  template <class State>
  GKD_HOST_DEVICE State operator()(State a, const State& b) const {
    a.merge(b);
    return a;
  }
};

/// ∂KL_i/∂b_j = q_j − p_j, from the logits and the row's two log-sum-exps.
template <class A>
GKD_HOST_DEVICE inline A kl_grad_coef(A a, A b, A lse_t, A lse_s) {
  return tile_exp(b - lse_s) - tile_exp(a - lse_t);
}

/// ∂L_i/∂c_j = softmax_j − [j is the positive], from the logit and the row's log-sum-exp.
template <class A>
GKD_HOST_DEVICE inline A infonce_grad_coef(A c, A lse, bool positive) {
  return tile_exp(c - lse) - (positive ? A(1) : A(0));
}

/// 1 / max(‖x‖, eps): the scale that L2-normalises a row.
template <class A>
GKD_HOST_DEVICE inline A inv_row_norm(A sq_norm, A eps) {
  const A n = sq_norm > A(0) ? (sizeof(A) == sizeof(float) ? ::sqrtf(float(sq_norm)) : ::sqrt(double(sq_norm))) : A(0);
  return A(1) / (n > eps ? n : eps);
}

/// Graph masks, as plain data usable on both sides. kind: 0 Full, 1 BlockDiagonal, 2 Star, 3 Dense
/// (every pair, self-loops included: CIRKD's pixel pairs).
struct MaskSpec {
  int kind = 0;
  std::int64_t group = 1;  ///< group size (BlockDiagonal, Star); ignored for Full and Dense

  /// True when row i has a loss term (Star: anchors only).
  [[nodiscard]] GKD_HOST_DEVICE bool row_active(std::int64_t i) const { return kind != 2 || i % group == 0; }
  /// First and one-past-last candidate column of row i.
  [[nodiscard]] GKD_HOST_DEVICE std::int64_t col_begin(std::int64_t i, std::int64_t n) const {
    (void)n;
    return kind == 0 || kind == 3 ? 0 : (i / group) * group;
  }
  [[nodiscard]] GKD_HOST_DEVICE std::int64_t col_end(std::int64_t i, std::int64_t n) const {
    return kind == 0 || kind == 3 ? n : (i / group) * group + group;
  }
  /// True when (i, j) is an edge of the KL graph (row active, same group, no self-loop unless Dense).
  [[nodiscard]] GKD_HOST_DEVICE bool edge(std::int64_t i, std::int64_t j, std::int64_t n) const {
    return (i != j || kind == 3) && row_active(i) && j >= col_begin(i, n) && j < col_end(i, n);
  }
  /// True when (i, j) is a column of row i in the InfoNCE form (same as edge, but j = i included).
  [[nodiscard]] GKD_HOST_DEVICE bool nce_edge(std::int64_t i, std::int64_t j, std::int64_t n) const {
    return row_active(i) && j >= col_begin(i, n) && j < col_end(i, n);
  }
};

}  // namespace gkd::detail
