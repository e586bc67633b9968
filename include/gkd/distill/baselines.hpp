// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The knowledge-distillation baselines of the pipeline, on the same footing as GKD: the same teacher,
/// student, data, optimiser and CE term; only the distillation terms differ. Features used: the logits,
/// a mid-level map (student x3 at H/8, teacher c3 at H/4) and the bottleneck (student x5 at H/32,
/// teacher c4 at H/8). Terms (weights and temperatures in `BaselineConfig`):
///
/// | method | terms |
/// |---|---|
/// | `kd` (Hinton 2015) | kd = kd_weight · distillation_kl(s, t, kd_tau) |
/// | `at` (Zagoruyko 2017) | at = at_weight · Σ_pairs attention_transfer_loss(p = at_p), pairs (mid, bottleneck) |
/// | `skd` (Liu 2019, without the adversarial term) | pixel = skd_pixel_weight · distillation_kl(s, t, 1); pair = skd_pair_weight · similarity_mse over the bottleneck nodes (teacher average-pooled to the student's grid) |
/// | `ifvd` (Wang 2020, without the adversarial term) | pixel as skd; ifvd = ifvd_weight · ifvd_loss on the bottlenecks |
/// | `fsp` (Yim 2017) | fsp = fsp_weight · fsp_loss between the (mid, bottleneck) Gram matrices; the student's two features pass through `FspConnectors` first |
/// | `cwd` (Shu 2021) | cwd = cwd_weight · channel_wise_kd_loss(logits, cwd_tau) |
/// | `emkd` (Qin 2021) | pmd = emkd_pmd · distillation_kl(s, t, 4); imd = emkd_imd · Σ_pairs AT(p = 4, summed over positions); rad = emkd_rad · Σ_pairs region_affinity_loss |
///
/// FSP compares Gram matrices of layer pairs, which needs equal channel counts: the student's mid and
/// bottleneck features are mapped to the teacher's channel counts by two 1x1 convolutions
/// (`FspConnectors`, FitNets-style regressors) trained with the student; the student network itself is
/// unchanged. The teacher's tensors are constants.
/// @code
///   gkd::distill::add_baseline_terms(terms, "emkd", {s_logits, s_mid, s_bottleneck},
///                                    {t_logits, t_mid, t_bottleneck}, masks, cfg.baseline);
/// @endcode
#include <string>

#include "gkd/distill/config.hpp"
#include "gkd/distill/loss_terms.hpp"
#include "gkd/losses/attention_transfer.hpp"
#include "gkd/losses/channel_wise_kd.hpp"
#include "gkd/losses/fsp.hpp"
#include "gkd/losses/ifvd.hpp"
#include "gkd/losses/kl_div.hpp"
#include "gkd/losses/pairwise_kd.hpp"
#include "gkd/losses/region_affinity.hpp"
#include "gkd/nn/conv.hpp"
#include "gkd/ops/pool.hpp"

namespace gkd::distill {

/// The tensors a baseline compares, for one model.
template <Real T>
struct KdFeatures {
  Tensor<T> logits, mid, bottleneck;
};

/// FSP's connectors: 1x1 convolutions without bias from the student's mid / bottleneck channels to the
/// teacher's, trained together with the student.
template <Real T>
struct FspConnectors {
  using value_type = T;
  nn::Conv2d<T> mid, bottleneck;
  /// Channel counts taken from one student's and one teacher's features (any batch, any size).
  FspConnectors(const KdFeatures<T>& student, const KdFeatures<T>& teacher, Generator& gen)
      : mid({.in = student.mid.shape()[1], .out = teacher.mid.shape()[1], .bias = false}, gen),
        bottleneck({.in = student.bottleneck.shape()[1], .out = teacher.bottleneck.shape()[1], .bias = false}, gen) {}
  template <class V>
  void visit(V& v) {
    v.child("mid", mid);
    v.child("bottleneck", bottleneck);
  }
};

/// Whether `method` is one of the baselines above.
inline bool is_baseline(const std::string& method) {
  return method == "kd" || method == "at" || method == "fsp" || method == "skd" || method == "ifvd" || method == "cwd" ||
         method == "emkd";
}

/// Adds the method's weighted terms (see the table). `masks` [B, H, W] hold the labels 0/1.
/// @param connectors FSP's connectors (method `fsp` only)
/// @throws gkd::Error for an unknown method, or `fsp` without connectors
template <Real T>
void add_baseline_terms(LossTerms<T>& terms, const std::string& method, const KdFeatures<T>& s, const KdFeatures<T>& t,
                        const Tensor<T>& masks, const BaselineConfig& b, FspConnectors<T>* connectors = nullptr) {
  GKD_CHECK(is_baseline(method), "add_baseline_terms", "unknown baseline '" << method << "'");
  GKD_CHECK(method != "fsp" || connectors, "add_baseline_terms", "method 'fsp' needs its connectors");
  const KdFeatures<T> tc{t.logits.detach(), t.mid.detach(), t.bottleneck.detach()};
  const auto pixel = [&](double tau) { return distillation_kl(s.logits, tc.logits, static_cast<T>(tau)); };
  const auto both_pairs = [&](auto&& loss) { return add(loss(s.mid, tc.mid), loss(s.bottleneck, tc.bottleneck)); };
  if (method == "kd") terms.add("kd", pixel(b.kd_tau), b.kd_weight);
  if (method == "at")
    terms.add("at", both_pairs([&](const Tensor<T>& x, const Tensor<T>& y) { return attention_transfer_loss(x, y, {.p = b.at_p}); }),
              b.at_weight);
  if (method == "fsp")
    terms.add("fsp", fsp_loss(connectors->mid.forward(s.mid), connectors->bottleneck.forward(s.bottleneck), tc.mid, tc.bottleneck),
              b.fsp_weight);
  if (method == "skd" || method == "ifvd") terms.add("pixel", pixel(1.0), b.skd_pixel_weight);
  if (method == "skd") {
    const auto& ss = s.bottleneck.shape();
    const Tensor<T> pooled = adaptive_avg_pool2d(tc.bottleneck, Size2(ss[2], ss[3]));
    const auto nodes = [](const Tensor<T>& f) { return f.flatten(2).transpose(1, 2).contiguous(); };  // [B, HW, C]
    terms.add("pair", similarity_mse(nodes(s.bottleneck), nodes(pooled)), b.skd_pair_weight);
  }
  if (method == "ifvd") terms.add("ifvd", ifvd_loss(s.bottleneck, tc.bottleneck, masks), b.ifvd_weight);
  if (method == "cwd") terms.add("cwd", channel_wise_kd_loss(s.logits, tc.logits, static_cast<T>(b.cwd_tau)), b.cwd_weight);
  if (method == "emkd") {
    terms.add("pmd", pixel(4.0), b.emkd_pmd);
    terms.add("imd",
              both_pairs([](const Tensor<T>& x, const Tensor<T>& y) {
                return attention_transfer_loss(x, y, {.p = 4.0, .sum_over_positions = true});
              }),
              b.emkd_imd);
    terms.add("rad", both_pairs([&](const Tensor<T>& x, const Tensor<T>& y) { return region_affinity_loss(x, y, masks); }), b.emkd_rad);
  }
}

}  // namespace gkd::distill
