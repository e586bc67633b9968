// SPDX-License-Identifier: Apache-2.0
// The GKD losses composed in gkd/distill (ACT, DCGD, DICD) and the pipeline's baselines, gradient-checked
// in float64 on tiny networks; the primitives they call (graph_kd_loss, cross_recon_kd, distillation_kl,
// the feature-KD losses) are matched against PyTorch in tests/losses.
#include <catch2/catch.hpp>

#include "gkd/distill/act.hpp"
#include "gkd/distill/baselines.hpp"
#include "gkd/distill/dcgd.hpp"
#include "gkd/distill/dicd.hpp"
#include "support/check.hpp"
#include "support/scratch.hpp"
#include "distill/tiny_networks.hpp"

using namespace gkd;
using namespace gkd::distill;

namespace {

struct TinyNets {
  PipelineConfig cfg = test::tiny_networks();
  Generator gen{3};
  Teacher<double> teacher = make_teacher<double>(cfg, gen);
  Student<double> student = make_student<double>(cfg, gen);
  Psae<double> psae = make_psae<double>(cfg, gen);
  Tan<double> tan = make_tan<double>(cfg, gen);
  San<double> san = make_san<double>(cfg, gen);
  Tensor<double> images = rand<double>({2, 1, 32, 32}, gen);
  Tensor<double> masks = randint<double>({2, 32, 32}, 2, gen);
  TinyNets() {
    freeze_for_inference(teacher), freeze_for_inference(student), freeze_for_inference(psae);
    nn::eval(tan), nn::eval(san);  // batch statistics of a batch of 2 would make the check ill-conditioned
  }
};

}  // namespace

TEST_CASE("ACT: every term reaches TAN and SAN with correct gradients", "[distill][gradcheck]") {
  TinyNets n;
  for (const char* only : {"rec", "sem", "align", "cross"}) {
    ActConfig w{.rec = 0, .sem = 0, .align = 0, .cross = 0, .cross_tau = 2.0};
    if (std::string(only) == "rec") w.rec = 1;
    if (std::string(only) == "sem") w.sem = 0.5;
    if (std::string(only) == "align") w.align = 2;
    if (std::string(only) == "cross") w.cross = 1;
    // TAN's encoder weights reach sem_pull through both z_T and the P-SAE's vector z_P = E_T(P_E(y)).
    const std::vector<Tensor<double>*> params{&n.tan.MLPheader.upfc1.weight, &n.san.MLPheader.downfc2.weight,
                                              &n.san.MLPheader.upfc1.weight, &n.tan.MLPheader.downfc2.weight};
    std::vector<Tensor<double>> inputs;
    for (auto* p : params) inputs.push_back(*p);
    INFO("term " << only);
    test::require_gradcheck(
        [&](const std::vector<Tensor<double>>& in) {
          for (std::size_t i = 0; i < params.size(); ++i) *params[i] = in[i];
          return act_losses(n.teacher, n.student, n.psae, n.tan, n.san, n.images, n.masks, w).total();
        },
        inputs);
  }
}

TEST_CASE("ACT: switched-off terms are absent, the frozen networks get no gradient", "[distill]") {
  TinyNets n;
  nn::train(n.tan), nn::train(n.san);
  const auto terms = act_losses(n.teacher, n.student, n.psae, n.tan, n.san, n.images, n.masks, {.rec = 1, .sem = 0, .align = 1, .cross = 0});
  REQUIRE(terms.terms.size() == 2);
  CHECK(terms.terms[0].first == "rec");
  CHECK(terms.terms[1].first == "align");
  terms.total().backward();
  CHECK(n.tan.MLPheader.downfc1.weight.grad().defined());
  for (const auto& p : nn::parameters(n.san)) CHECK(p.grad().defined());
  for (const auto& p : nn::parameters(n.teacher)) CHECK_FALSE(p.grad().defined());
  CHECK_THAT(test::error_of([&] { (void)act_losses(n.teacher, n.student, n.psae, n.tan, n.san, n.images, n.masks.narrow(1, 0, 16), ActConfig{}); }),
             Catch::Contains("act_losses"));
}

TEST_CASE("DCGD: intra (star) and inter (full) graph terms, KL and InfoNCE forms", "[distill][gradcheck]") {
  Generator gen(5);
  std::vector<Tensor<double>> teacher;
  for (int v = 0; v < 3; ++v) teacher.push_back(randn<double>({4, 6}, gen));
  for (const char* form : {"kl", "infonce"}) {
    const GkdConfig c{.intra = 1.0, .inter = 0.5, .cross = 0, .graph_tau = 0.5, .graph_loss = form};
    INFO("form " << form);
    test::require_gradcheck(
        [&](const std::vector<Tensor<double>>& in) {
          LossTerms<double> terms;
          add_dcgd_terms(terms, in, teacher, c);
          REQUIRE(terms.terms.size() == 2);
          return terms.total();
        },
        {randn<double>({4, 6}, gen), randn<double>({4, 6}, gen), randn<double>({4, 6}, gen)});
  }
}

TEST_CASE("DCGD: the intra term is the star graph over each sample's anchor and views", "[distill]") {
  Generator gen(6);
  std::vector<Tensor<double>> s, t;
  for (int v = 0; v < 3; ++v) s.push_back(randn<double>({2, 5}, gen)), t.push_back(randn<double>({2, 5}, gen));
  LossTerms<double> terms;
  add_dcgd_terms(terms, s, t, {.intra = 1, .inter = 0, .graph_tau = 0.7});
  REQUIRE(terms.terms.size() == 1);
  // sample-major rows: sample 0's anchor, view 1, view 2, then sample 1's; stars of 3 rows
  GraphKDOptions o;
  o.temperature = 0.7;
  o.mask = GraphMask::star(3);
  const auto rows = [](const std::vector<Tensor<double>>& v) {
    return concat({v[0].narrow(0, 0, 1), v[1].narrow(0, 0, 1), v[2].narrow(0, 0, 1), v[0].narrow(0, 1, 1),
                   v[1].narrow(0, 1, 1), v[2].narrow(0, 1, 1)},
                  0);
  };
  CHECK(terms.terms[0].second.item() == Approx(graph_kd_loss(rows(s), rows(t), o).item()).epsilon(1e-12));
  CHECK_THAT(test::error_of([&] { add_dcgd_terms(terms, {s[0]}, {t[0]}, GkdConfig{}); }), Catch::Contains("at least one view"));
}

TEST_CASE("DICD: gradients reach the student's bottleneck and skips through the exchanged headers", "[distill][gradcheck]") {
  TinyNets n;
  models::SKEncoderFeatures<double> tf;
  Tensor<double> t_logits;
  {
    NoGrad g;
    tf = n.teacher.encode(n.images);
    t_logits = n.teacher.decode(tf.c4, tf).logits;
  }
  const auto skips = n.student.encode(n.images.narrow(0, 0, 2));
  test::require_gradcheck(
      [&](const std::vector<Tensor<double>>& in) {
        typename Student<double>::Skips k{in[0], in[1], in[2], in[3], in[4]};
        return dicd_loss(n.teacher, n.student, n.tan, n.san, tf, t_logits, k, 2.0);
      },
      {skips.x1.detach(), skips.x2.detach(), skips.x3.detach(), skips.x4.detach(), skips.x5.detach()});
}

TEST_CASE("baselines: each method's terms, gradient-checked w.r.t. the student's tensors", "[distill][gradcheck]") {
  Generator gen(8);
  const Tensor<double> masks = randint<double>({2, 16, 16}, 2, gen);
  const KdFeatures<double> t{randn<double>({2, 2, 16, 16}, gen), randn<double>({2, 6, 8, 8}, gen), randn<double>({2, 5, 4, 4}, gen)};
  const std::map<std::string, std::vector<std::string>> expected = {
      {"kd", {"kd"}}, {"at", {"at"}}, {"skd", {"pixel", "pair"}}, {"ifvd", {"pixel", "ifvd"}}, {"cwd", {"cwd"}}, {"emkd", {"pmd", "imd", "rad"}}};
  for (const auto& [method, names] : expected) {
    INFO("method " << method);
    test::require_gradcheck(
        [&](const std::vector<Tensor<double>>& in) {
          LossTerms<double> terms;
          add_baseline_terms(terms, method, KdFeatures<double>{in[0], in[1], in[2]}, t, masks, BaselineConfig{});
          std::vector<std::string> got;
          for (const auto& [name, v] : terms.terms) got.push_back(name);
          REQUIRE(got == names);
          return terms.total();
        },
        {randn<double>({2, 2, 16, 16}, gen), randn<double>({2, 3, 4, 4}, gen), randn<double>({2, 4, 2, 2}, gen)});
  }
  LossTerms<double> terms;
  CHECK_THAT(test::error_of([&] { add_baseline_terms(terms, "fitnet", t, t, masks, BaselineConfig{}); }),
             Catch::Contains("unknown baseline 'fitnet'"));
}

TEST_CASE("FSP baseline: Gram matrices of the connector-mapped student features, gradient-checked", "[distill][gradcheck]") {
  Generator gen(9);
  const Tensor<double> masks = randint<double>({2, 16, 16}, 2, gen);
  const KdFeatures<double> t{randn<double>({2, 2, 16, 16}, gen), randn<double>({2, 6, 8, 8}, gen), randn<double>({2, 5, 4, 4}, gen)};
  const KdFeatures<double> s{randn<double>({2, 2, 16, 16}, gen), randn<double>({2, 3, 4, 4}, gen), randn<double>({2, 4, 2, 2}, gen)};
  FspConnectors<double> connectors(s, t, gen);
  CHECK(connectors.mid.weight.shape() == Shape{6, 3, 1, 1});
  CHECK(connectors.bottleneck.weight.shape() == Shape{5, 4, 1, 1});
  test::require_gradcheck(
      [&](const std::vector<Tensor<double>>& in) {
        connectors.mid.weight = in[3], connectors.bottleneck.weight = in[4];
        LossTerms<double> terms;
        add_baseline_terms(terms, "fsp", KdFeatures<double>{in[0], in[1], in[2]}, t, masks, BaselineConfig{}, &connectors);
        REQUIRE(terms.terms.size() == 1);
        CHECK(terms.terms[0].first == "fsp");
        return terms.total();
      },
      {s.logits, s.mid, s.bottleneck, connectors.mid.weight, connectors.bottleneck.weight});
  LossTerms<double> terms;
  CHECK_THAT(test::error_of([&] { add_baseline_terms(terms, "fsp", s, t, masks, BaselineConfig{}); }),
             Catch::Contains("method 'fsp' needs its connectors"));
}

TEST_CASE("LossTerms: weights, totals and the NaN guard naming stage, step and term", "[distill]") {
  LossTerms<double> terms;
  terms.add("a", Tensor<double>::from({}, {2.0}));
  terms.add("b", Tensor<double>::from({}, {3.0}), 0.5);
  terms.add("off", Tensor<double>::from({}, {100.0}), 0.0);
  CHECK(terms.terms.size() == 2);
  CHECK(terms.total().item() == 3.5);
  terms.add("bad", Tensor<double>::from({}, {std::nan("")}));
  CHECK_THAT(test::error_of([&] { terms.check_finite("distill", 17); }),
             Catch::Contains("stage 'distill', step 17: loss term 'bad' is nan"));
}
