// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Per-element mathematics of the tiled pair-wise distillation losses (SKD similarity MSE and CIRKD
/// cross-image pixel-pair KL), shared by the OpenMP CPU path (`gkd/losses/pairwise_kd.hpp`) and the
/// CUDA kernels (`kernels/pairwise_kd/`). Only the scheduling differs between the two: both compute the
/// same similarity tiles and call these functions on them. CIRKD's per-row state (online log-sum-exps
/// and the KL) and its gradient coefficient are graph_kd's: `KlRow` and `kl_grad_coef` of
/// graph_kd_tile.hpp, as is the row scale `inv_row_norm`.
///
/// Notation for one graph / image pair: rows ŝ_i, t̂_i (L2-normalised student / teacher features),
/// columns ŝ_j, t̂_j; a_s = ŝ_i·ŝ_j, a_t = t̂_i·t̂_j.
/// @code
///   double loss = 0;
///   double coef = gkd::detail::skd_pair(a_s, a_t, 1.0 / (B * N * N), loss);  // d ŝ_i += coef · ŝ_j
/// @endcode
#include <cmath>

#include "gkd/core/host_device.hpp"
#include "gkd/losses/detail/graph_kd_tile.hpp"

namespace gkd::detail {

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

}  // namespace gkd::detail
