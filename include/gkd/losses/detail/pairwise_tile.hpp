// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Per-element and per-row mathematics of the tiled pair-wise distillation losses (SKD similarity
/// MSE and CIRKD cross-image pixel-pair KL), shared by the OpenMP CPU path
/// (`gkd/losses/pairwise_kd.hpp`) and the CUDA kernels (`kernels/pairwise_kd/`). Only the scheduling
/// differs between the two: both compute the same similarity tiles and call these functions on them.
///
/// Notation for one graph / image pair: rows ŝ_i, t̂_i (L2-normalised student / teacher features),
/// columns ŝ_j, t̂_j; a_s = ŝ_i·ŝ_j, a_t = t̂_i·t̂_j; for CIRKD z = a / τ and per row the running
/// log-sum-exp state (max m, sum l) of the student and the teacher logits.
/// @code
///   gkd::detail::RunningLse<double> s;   // one row
///   for (double z : row) s.add(z);
///   double lse = s.value();
/// @endcode
#include <cmath>

#include "gkd/core/host_device.hpp"

namespace gkd::detail {

/// 1 / max(std::sqrt(sq), eps): the row scale of F.normalize (sq is the squared L2 norm).
template <class A>
GKD_HOST_DEVICE inline A inverse_norm(A sq, A eps) {
  const A n = std::sqrt(sq);
  return A(1) / (n > eps ? n : eps);
}

/// Chain rule of F.normalize for one element: d x = (d x̂ − x̂ (x̂·d x̂)) / n where the norm n is
/// not clamped, d x̂ / eps where it is (PyTorch does not differentiate the clamped norm).
template <class A>
GKD_HOST_DEVICE inline A normalize_backward(A dxhat, A xhat, A xhat_dot_dxhat, A inv_norm, bool clamped) {
  return clamped ? dxhat * inv_norm : (dxhat - xhat * xhat_dot_dxhat) * inv_norm;
}

/// SKD: one pair's squared difference, and the coefficient of ŝ_j in d loss / d ŝ_i. With
/// `weight` = 1 / (B N²) for the mean (1 for the sum), loss += weight (a_s − a_t)² and, because the
/// pair (i, j) and (j, i) contribute the same term, d ŝ_i += 4 weight (a_s − a_t) ŝ_j summed over
/// all j (the returned coefficient).
template <class A>
GKD_HOST_DEVICE inline A skd_pair(A a_s, A a_t, A weight, A& loss) {
  const A d = a_s - a_t;
  loss += weight * d * d;
  return A(4) * weight * d;
}

/// A running log-sum-exp (max m, Σ std::exp(z − m), empty at m = −inf; graph_kd_tile.hpp's OnlineLse is the
/// same idea starting from the lowest finite value) updated one value or one tile at a time, merged the
/// way FlashAttention and Inf-CL merge tiles; starts empty (m = −inf, l = 0).
template <class A>
struct RunningLse {
  A m = -INFINITY;
  A l = 0;
  /// Adds one value.
  GKD_HOST_DEVICE void add(A z) {
    if (z > m) {
      l = l * std::exp(m - z) + A(1);
      m = z;
    } else {
      l += std::exp(z - m);
    }
  }
  /// Merges another running state (e.g. one tile's row max and sum).
  GKD_HOST_DEVICE void merge(A other_m, A other_l) {
    if (other_l == A(0)) return;
    if (other_m > m) {
      l = l * std::exp(m - other_m) + other_l;
      m = other_m;
    } else {
      l += other_l * std::exp(other_m - m);
    }
  }
  /// log Σ std::exp(z).
  GKD_HOST_DEVICE A value() const { return m + std::log(l); }
};

/// CIRKD row state: the student and teacher log-sum-exps and the running Σ_j std::exp(z_t − m_t)(z_t − z_s),
/// rescaled with the teacher max, so that KL_i = Σ_j p_j (z_t − z_s) − lse_t + lse_s.
template <class A>
struct KlRowState {
  RunningLse<A> s, t;
  A cross = 0;  ///< Σ std::exp(z_t − t.m)(z_t − z_s)
  /// Adds one column (student logit zs, teacher logit zt).
  GKD_HOST_DEVICE void add(A zs, A zt) {
    s.add(zs);
    if (zt > t.m) {
      const A r = std::exp(t.m - zt);
      cross = cross * r + (zt - zs);
      t.l = t.l * r + A(1);
      t.m = zt;
    } else {
      const A e = std::exp(zt - t.m);
      cross += e * (zt - zs);
      t.l += e;
    }
  }
  /// Merges the state of another part of the same row (e.g. another thread's columns).
  GKD_HOST_DEVICE void merge(const KlRowState& o) {
    s.merge(o.s.m, o.s.l);
    if (o.t.l == A(0)) return;
    if (t.l == A(0)) {
      t = o.t;
      cross = o.cross;
    } else if (o.t.m > t.m) {
      const A r = std::exp(t.m - o.t.m);
      cross = cross * r + o.cross;
      t.l = t.l * r + o.t.l;
      t.m = o.t.m;
    } else {
      const A r = std::exp(o.t.m - t.m);
      cross += o.cross * r;
      t.l += o.t.l * r;
    }
  }
  /// KL(softmax(z_t) ‖ softmax(z_s)) of the row; never negative.
  GKD_HOST_DEVICE A kl() const {
    const A v = cross / t.l - t.value() + s.value();
    return v > A(0) ? v : A(0);
  }
};

/// CIRKD: the coefficient of one pair in the student gradient, d KL_i / d a_s = (q − p) / τ, times
/// `weight`, from the pair's logits and the row's final log-sum-exps. d ŝ_i += g ŝ_j and
/// d ŝ_j += g ŝ_i (the columns are student features too).
template <class A>
GKD_HOST_DEVICE inline A kl_pair_grad(A zs, A zt, A lse_s, A lse_t, A weight_over_tau) {
  return weight_over_tau * (std::exp(zs - lse_s) - std::exp(zt - lse_t));
}

}  // namespace gkd::detail
