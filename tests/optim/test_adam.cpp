// SPDX-License-Identifier: Apache-2.0
#include "optim/trajectory.hpp"

using namespace gkd;
using gkd::test::GradSource;
using gkd::test::replay_trajectory;

namespace {

template <Real T>
using Groups = std::vector<ParamGroupOptions<T>>;

template <Real T>
void replay_all(GradSource source, double tol) {
  replay_trajectory<T>(
      "adam",
      [](const Tensor<T>& W, const Tensor<T>& b) -> std::unique_ptr<Optimizer<T>> {
        return std::make_unique<Adam<T>>(std::vector<Tensor<T>>{W, b},
                                         AdamOptions{.lr = 0.05, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8,
                                                     .weight_decay = 1e-3});
      },
      [](Optimizer<T>& o) { return std::make_unique<PolyLR<T>>(o, 20, 0.9); }, source, tol);
  replay_trajectory<T>(
      "adam_amsgrad",
      [](const Tensor<T>& W, const Tensor<T>& b) -> std::unique_ptr<Optimizer<T>> {
        return std::make_unique<Adam<T>>(Groups<T>{{.params = {W}}, {.params = {b}, .lr = 0.1}},
                                         AdamOptions{.lr = 0.03, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6,
                                                     .amsgrad = true});
      },
      [](Optimizer<T>& o) { return std::make_unique<CosineAnnealingLR<T>>(o, 15, 1e-3); }, source, tol);
  replay_trajectory<T>(
      "adamw",
      [](const Tensor<T>& W, const Tensor<T>& b) -> std::unique_ptr<Optimizer<T>> {
        return std::make_unique<AdamW<T>>(Groups<T>{{.params = {W}, .weight_decay = 0.1}, {.params = {b}, .lr = 0.02}},
                                          AdamWOptions{.lr = 0.05, .weight_decay = 0.01});
      },
      [](Optimizer<T>& o) { return std::make_unique<WarmupCosineLR<T>>(o, 5, 25, 0.1, 1e-4); }, source, tol);
  replay_trajectory<T>(
      "adamw_amsgrad",
      [](const Tensor<T>& W, const Tensor<T>& b) -> std::unique_ptr<Optimizer<T>> {
        return std::make_unique<AdamW<T>>(std::vector<Tensor<T>>{W, b},
                                          AdamWOptions{.lr = 0.04, .beta1 = 0.85, .beta2 = 0.9, .weight_decay = 0.3,
                                                       .amsgrad = true});
      },
      nullptr, source, tol);
}

}  // namespace

TEMPLATE_TEST_CASE("Adam and AdamW trajectories match PyTorch", "[golden][optim][adam]", float, double) {
  replay_all<TestType>(GradSource::Gkd, gkd::test::trajectory_tolerance<TestType>());
}

TEMPLATE_TEST_CASE("Adam arithmetic matches PyTorch's to ulps given its gradients", "[golden][optim][adam]", float,
                   double) {
  replay_all<TestType>(GradSource::PyTorch, gkd::test::exact_replay_tolerance<TestType>(true));
}

TEST_CASE("Adam follows the documented update by hand", "[optim][adam]") {
  auto p = Tensor<double>::from({2}, {1.0, -1.0}).requires_grad();
  Adam<double> opt({p}, {.lr = 0.1, .beta1 = 0.5, .beta2 = 0.75, .eps = 1e-3, .amsgrad = true});
  const double g1[2] = {0.4, -2.0}, g2[2] = {0.1, 0.5};
  double m[2] = {0, 0}, v[2] = {0, 0}, vmax[2] = {0, 0}, x[2] = {1.0, -1.0};
  for (int t = 1; t <= 2; ++t) {
    const double* g = t == 1 ? g1 : g2;
    p.set_grad(Tensor<double>::from({2}, {g[0], g[1]}));
    opt.step();
    for (int i = 0; i < 2; ++i) {
      m[i] = 0.5 * m[i] + 0.5 * g[i];
      v[i] = 0.75 * v[i] + 0.25 * g[i] * g[i];
      vmax[i] = std::max(vmax[i], v[i]);
      const double denom = std::sqrt(vmax[i]) / std::sqrt(1 - std::pow(0.75, t)) + 1e-3;
      x[i] -= 0.1 / (1 - std::pow(0.5, t)) * m[i] / denom;
      CHECK(p.at({i}) == Approx(x[i]).epsilon(1e-14));
    }
  }
  const ParamState<double>& s = opt.state(0);
  CHECK(s.step == 2);
  CHECK(s.at("exp_avg").at({1}) == Approx(m[1]));
  CHECK(s.at("exp_avg_sq").at({1}) == Approx(v[1]));
  CHECK(s.at("max_exp_avg_sq").at({1}) == Approx(vmax[1]));
  CHECK(vmax[1] > v[1]);  // the amsgrad branch mattered
  std::vector<std::string> names;
  for (const auto& [name, t] : opt.named_state()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq"});
}

TEST_CASE("AdamW decays decoupled from the gradient, Adam adds L2 to it", "[optim][adam]") {
  auto a = Tensor<double>::from({1}, {2.0}).requires_grad();
  auto b = Tensor<double>::from({1}, {2.0}).requires_grad();
  AdamW<double> w({a}, {.lr = 0.1, .weight_decay = 0.5});
  Adam<double> l2({b}, {.lr = 0.1, .weight_decay = 0.5});
  CHECK(w.name() == "AdamW");
  CHECK(w.decoupled());
  CHECK_FALSE(l2.decoupled());
  a.set_grad(Tensor<double>::from({1}, {0.0}));
  b.set_grad(Tensor<double>::from({1}, {0.0}));
  w.step();
  l2.step();
  // AdamW: p = 2 * (1 - 0.05) and a zero gradient moves nothing else.
  CHECK(a.item() == Approx(1.9).epsilon(1e-15));
  // Adam: g = 0.5 * 2 = 1; first step moves by lr * m_hat / (sqrt(v_hat) + eps) ~ lr.
  CHECK(b.item() == Approx(2.0 - 0.1 * 1.0 / (1.0 + 1e-8)).epsilon(1e-12));
}

TEST_CASE("Adam skips parameters without a gradient (their step count stays)", "[optim][adam]") {
  auto a = Tensor<float>::ones({3}).requires_grad();
  auto b = Tensor<float>::ones({3}).requires_grad();
  Adam<float> opt({a, b}, {.lr = 0.1});
  a.set_grad(Tensor<float>::ones({3}));
  opt.step();
  opt.step();
  b.set_grad(Tensor<float>::ones({3}));
  a.zero_grad();
  opt.step();
  CHECK(opt.state(0).step == 2);
  CHECK(opt.state(1).step == 1);
  // First update of b with bias correction: exactly lr * 1 / (1 + eps) away.
  CHECK(b.at({0}) == Approx(0.9f));
  CHECK(a.at({0}) == Approx(0.8f));
}

TEST_CASE("Adam bad input raises gkd::Error naming Adam and the values", "[errors][optim][adam]") {
  auto p = Tensor<double>::zeros({2}).requires_grad();
  using Catch::Contains;
  REQUIRE_THROWS_WITH(Adam<double>({p}, {.lr = -1e-3}), Contains("Adam") && Contains("learning rate -0.001"));
  REQUIRE_THROWS_WITH(Adam<double>({p}, {.beta1 = 1.0}), Contains("Adam") && Contains("beta1") && Contains("got 1"));
  REQUIRE_THROWS_WITH(Adam<double>({p}, {.beta1 = -0.1}), Contains("Adam") && Contains("beta1") && Contains("-0.1"));
  REQUIRE_THROWS_WITH(Adam<double>({p}, {.beta2 = 1.5}), Contains("Adam") && Contains("beta2") && Contains("1.5"));
  REQUIRE_THROWS_WITH(Adam<double>({p}, {.eps = -1}), Contains("Adam") && Contains("eps -1"));
  REQUIRE_THROWS_WITH(Adam<double>({p}, {.weight_decay = -0.1}), Contains("Adam") && Contains("weight_decay -0.1"));
  REQUIRE_THROWS_WITH(AdamW<double>({p}, {.beta2 = 1.0}), Contains("AdamW") && Contains("beta2"));
  REQUIRE_THROWS_WITH(AdamW<double>(std::vector<Tensor<double>>{}), Contains("AdamW") && Contains("empty"));
  REQUIRE_THROWS_WITH(Adam<double>({Tensor<double>::zeros({5})}), Contains("Adam") && Contains("does not require grad"));
  REQUIRE_THROWS_WITH(Adam<double>(Groups<double>{{.params = {p}, .lr = -2.0}}, {}),
                      Contains("Adam") && Contains("learning rate -2"));
  Adam<double> opt({p});
  REQUIRE_THROWS_WITH(opt.state(0).at("momentum_buffer"), Contains("momentum_buffer"));
}
