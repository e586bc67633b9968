// SPDX-License-Identifier: Apache-2.0
#include <memory>

#include "gkd/optim/schedule.hpp"
#include "gkd/optim/sgd.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;

namespace {

/// An optimizer with two groups whose base lrs are 0.1 and 0.037, as in tools/golden/optim.py.
struct TwoGroups {
  Tensor<double> a = Tensor<double>::zeros({1}).requires_grad();
  Tensor<double> b = Tensor<double>::zeros({1}).requires_grad();
  SGD<double> opt{std::vector<ParamGroupOptions<double>>{{.params = {a}}, {.params = {b}, .lr = 0.037}}, {.lr = 0.1}};
};

using Make = std::function<std::unique_ptr<LRScheduler<double>>(Optimizer<double>&)>;

/// Steps the scheduler through golden case `name`: every lr must equal PyTorch's closed form bit for
/// bit, and PyTorch's recursive step() values within 1e-13 (they accumulate a few ulps).
void check_schedule(const std::string& name, const Make& make) {
  static const gkd::test::Golden golden("optim");
  const Tensor<double> chain = golden.get<double>("sched." + name + ".lr");
  const Tensor<double> closed = golden.get<double>("sched." + name + ".closed");
  TwoGroups g;
  auto sched = make(g.opt);
  for (std::int64_t t = 0; t < chain.size(0); ++t) {
    if (t > 0) {
      g.opt.step();
      sched->step();
    }
    REQUIRE(sched->last_epoch() == t);
    for (std::int64_t i = 0; i < 2; ++i) {
      const double lr = g.opt.lr(static_cast<std::size_t>(i));
      INFO(name << " epoch " << t << " group " << i << ": " << lr << " vs PyTorch closed form " << closed.at({t, i})
                << " and step() " << chain.at({t, i}));
      CHECK(lr == closed.at({t, i}));
      CHECK(std::abs(lr - chain.at({t, i})) <= 1e-13 * std::abs(chain.at({t, i})));
      CHECK(sched->last_lr()[static_cast<std::size_t>(i)] == lr);
    }
  }
}

}  // namespace

TEST_CASE("LR schedules equal PyTorch's", "[golden][optim][schedule]") {
  check_schedule("step", [](Optimizer<double>& o) { return std::make_unique<StepLR<double>>(o, 3, 0.7); });
  check_schedule("multistep", [](Optimizer<double>& o) {
    return std::make_unique<MultiStepLR<double>>(o, std::vector<std::int64_t>{12, 5, 12, 30}, 0.4);
  });
  check_schedule("poly", [](Optimizer<double>& o) { return std::make_unique<PolyLR<double>>(o, 30, 0.9); });
  check_schedule("cosine", [](Optimizer<double>& o) { return std::make_unique<CosineAnnealingLR<double>>(o, 17, 0.002); });
  check_schedule("warmup_cosine",
                 [](Optimizer<double>& o) { return std::make_unique<WarmupCosineLR<double>>(o, 8, 30, 0.05, 0.001); });
}

TEST_CASE("Schedules follow their documented formulas", "[optim][schedule]") {
  TwoGroups g;
  WarmupCosineLR sched(g.opt, 4, 10, 0.0, 0.01);  // class template argument deduction from SGD<double>
  CHECK(g.opt.lr(0) == 0.0);
  for (int t = 1; t <= 12; ++t) {
    sched.step();
    const double expected = t < 4 ? 0.1 * t / 4 : 0.01 + 0.09 * (1 + std::cos(std::numbers::pi * (t - 4) / 6)) / 2;
    CHECK(g.opt.lr(0) == Approx(expected).epsilon(1e-14));
  }
  CHECK(sched.lr_at(0.1, 4) == Approx(0.1));
  CHECK(sched.lr_at(0.1, 10) == Approx(0.01));

  TwoGroups h;
  PolyLR poly(h.opt, 100);  // power 0.9 by default
  CHECK(poly.lr_at(1.0, 50) == Approx(std::pow(0.5, 0.9)));
  CHECK(poly.lr_at(1.0, 100) == 0.0);
  CHECK(poly.lr_at(1.0, 150) == 0.0);
}

TEST_CASE("Schedules resume, start from initial_lr and compose", "[optim][schedule]") {
  TwoGroups g;
  StepLR sched(g.opt, 2, 0.5);
  for (int t = 0; t < 5; ++t) sched.step();
  CHECK(g.opt.lr(0) == Approx(0.025));
  CHECK(g.opt.group(0).initial_lr == 0.1);
  CHECK(sched.base_lrs() == std::vector<double>{0.1, 0.037});
  // A second scheduler starts from the groups' initial_lr, not from the lr the first one set.
  CosineAnnealingLR cosine(g.opt, 10);
  CHECK(cosine.base_lrs() == std::vector<double>{0.1, 0.037});
  CHECK(g.opt.lr(1) == 0.037);
  // Resuming: jump to an epoch and get that epoch's lrs.
  sched.set_last_epoch(4);
  CHECK(sched.last_epoch() == 4);
  CHECK(g.opt.lr(1) == Approx(0.037 * 0.25));

  // The lab schedule of method.md: step base lr times (1 - t / T)^0.9, composed with LambdaLR.
  TwoGroups h;
  LambdaLR lab(h.opt, [](std::int64_t t) { return (t < 50 ? 1.0 : t < 100 ? 0.1 : 0.01) * std::pow(1 - t / 300.0, 0.9); });
  for (int t = 0; t < 120; ++t) lab.step();
  CHECK(h.opt.lr(0) == Approx(0.1 * 0.01 * std::pow(1 - 120 / 300.0, 0.9)));
}

TEST_CASE("Schedule bad input raises gkd::Error naming the scheduler and the values", "[errors][optim][schedule]") {
  using Catch::Contains;
  TwoGroups g;
  REQUIRE_THROWS_WITH(StepLR(g.opt, 0, 0.5), Contains("StepLR") && Contains("step_size") && Contains("got 0"));
  REQUIRE_THROWS_WITH(StepLR(g.opt, 3, -0.5), Contains("StepLR") && Contains("gamma") && Contains("-0.5"));
  REQUIRE_THROWS_WITH(MultiStepLR(g.opt, {3, -1}), Contains("MultiStepLR") && Contains("-1"));
  REQUIRE_THROWS_WITH(PolyLR(g.opt, 0), Contains("PolyLR") && Contains("total_steps") && Contains("got 0"));
  REQUIRE_THROWS_WITH(PolyLR(g.opt, 10, -1.0), Contains("PolyLR") && Contains("power") && Contains("-1"));
  REQUIRE_THROWS_WITH(CosineAnnealingLR(g.opt, 0), Contains("CosineAnnealingLR") && Contains("T_max") && Contains("0"));
  REQUIRE_THROWS_WITH(CosineAnnealingLR(g.opt, 5, -1e-3), Contains("CosineAnnealingLR") && Contains("eta_min"));
  REQUIRE_THROWS_WITH(WarmupCosineLR(g.opt, 10, 10), Contains("WarmupCosineLR") && Contains("warmup_steps 10") &&
                                                         Contains("total_steps 10"));
  REQUIRE_THROWS_WITH(WarmupCosineLR(g.opt, 2, 10, 1.5), Contains("WarmupCosineLR") && Contains("start_factor") &&
                                                             Contains("1.5"));
  REQUIRE_THROWS_WITH(LambdaLR(g.opt, [](std::int64_t) { return -1.0; }), Contains("LambdaLR") && Contains("-1"));
  StepLR sched(g.opt, 2);
  REQUIRE_THROWS_WITH(sched.set_last_epoch(-3), Contains("StepLR") && Contains("-3"));
  g.opt.add_param_group({Tensor<double>::zeros({2}).requires_grad()});
  REQUIRE_THROWS_WITH(sched.step(), Contains("StepLR") && Contains("3 parameter groups") && Contains("built for 2"));
}
