// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Dual Contrastive Graph Distillation (DCGD, stage 3; method.md §6.3, our formulation [INFER]). For B
/// samples, an anchor view and K augmented views each pass through the teacher and the student; the frozen
/// MSAN encoders give the latent vectors z^T (E_T on c4) and z^S (E_S on x5), C_t long. Per model:
///
/// - intra-coupling graph: one star per sample, the anchor at the centre and its K views as leaves;
/// - inter-coupling graph: fully connected over the B·K augmented vectors of the batch.
///
/// The teacher's and the student's graphs are matched by `graph_kd_loss` (loss "kl": per node, KL between
/// the softmax over its edges of the cosine similarities / τ, teacher ‖ student) or `graph_infonce_loss`
/// (loss "infonce": each student node must pick its own teacher node among the same edges). Means over the
/// nodes that have edges (the B anchors for intra, all B·K views for inter). The teacher vectors are
/// constants; gradients flow into the student through the frozen SAN encoder.
/// @code
///   // z_student[0], z_teacher[0]: anchors [B, C]; [1..K]: the views [B, C]
///   gkd::distill::LossTerms<float> terms;
///   gkd::distill::add_dcgd_terms(terms, z_student, z_teacher, cfg.gkd);   // adds "intra" and "inter"
/// @endcode
#include <vector>

#include "gkd/distill/config.hpp"
#include "gkd/distill/loss_terms.hpp"
#include "gkd/losses/graph_kd.hpp"
#include "gkd/ops/join.hpp"

namespace gkd::distill {

/// Rows in sample-major order, [B·V, C]: row b·V + v is `per_view[v][b]` (V = per_view.size()).
template <Real T>
Tensor<T> sample_major(const std::vector<Tensor<T>>& per_view) {
  GKD_CHECK(!per_view.empty(), "sample_major", "no views");
  const Tensor<T> s = stack(per_view, 1);  // [B, V, C]
  return s.reshape({s.shape()[0] * s.shape()[1], s.shape()[2]});
}

/// Adds the weighted "intra" and "inter" terms (weights `c.intra`, `c.inter`; 0 switches one off).
/// @param z_student, z_teacher  1 + K tensors [B, C]: the anchors, then the K views
/// @throws gkd::Error for fewer than 2 views, or mismatched shapes
template <Real T>
void add_dcgd_terms(LossTerms<T>& terms, const std::vector<Tensor<T>>& z_student, const std::vector<Tensor<T>>& z_teacher,
                    const GkdConfig& c) {
  GKD_CHECK(z_student.size() >= 2 && z_student.size() == z_teacher.size(), "dcgd",
            "expected the anchors and at least one view for both models, got " << z_student.size() << " student and "
                                                                               << z_teacher.size() << " teacher tensors");
  const auto graph_loss = [&](const Tensor<T>& s, const Tensor<T>& t, GraphMask mask) {
    GraphKDOptions o;
    o.temperature = c.graph_tau;
    o.mask = mask;
    return c.graph_loss == "infonce" ? graph_infonce_loss(s, t.detach(), o) : graph_kd_loss(s, t.detach(), o);
  };
  const auto group = static_cast<std::int64_t>(z_student.size());
  if (wants(c.intra))
    terms.add("intra", graph_loss(sample_major(z_student), sample_major(z_teacher), GraphMask::star(group)), c.intra);
  if (wants(c.inter)) {
    const std::vector<Tensor<T>> vs(z_student.begin() + 1, z_student.end()), vt(z_teacher.begin() + 1, z_teacher.end());
    terms.add("inter", graph_loss(sample_major(vs), sample_major(vt), GraphMask::full()), c.inter);
  }
}

}  // namespace gkd::distill
