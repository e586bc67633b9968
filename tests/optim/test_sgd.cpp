// SPDX-License-Identifier: Apache-2.0
#include "optim/trajectory.hpp"

using namespace gkd;
using gkd::test::GradSource;
using gkd::test::replay_trajectory;

namespace {

template <Real T>
std::unique_ptr<Optimizer<T>> sgd_momentum(const Tensor<T>& W, const Tensor<T>& b) {
  return std::make_unique<SGD<T>>(std::vector<ParamGroupOptions<T>>{{.params = {W}}, {.params = {b}, .lr = 0.05}},
                                  SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1});
}
template <Real T>
std::unique_ptr<Optimizer<T>> sgd_nesterov_wd(const Tensor<T>& W, const Tensor<T>& b) {
  return std::make_unique<SGD<T>>(
      std::vector<ParamGroupOptions<T>>{{.params = {W}, .weight_decay = 0.02}, {.params = {b}}},
      SGDOptions{.lr = 0.08, .momentum = 0.8, .nesterov = true, .weight_decay = 0.0});
}
template <Real T>
std::unique_ptr<Optimizer<T>> sgd_plain_wd(const Tensor<T>& W, const Tensor<T>& b) {
  return std::make_unique<SGD<T>>(std::vector<Tensor<T>>{W, b}, SGDOptions{.lr = 0.2, .weight_decay = 0.05});
}

template <Real T>
void replay_all(GradSource source, double tol) {
  replay_trajectory<T>("sgd_momentum", sgd_momentum<T>,
                       [](Optimizer<T>& o) { return std::make_unique<StepLR<T>>(o, 7, 0.5); }, source, tol);
  replay_trajectory<T>(
      "sgd_nesterov_wd", sgd_nesterov_wd<T>,
      [](Optimizer<T>& o) { return std::make_unique<MultiStepLR<T>>(o, std::vector<std::int64_t>{4, 10, 10, 17}, 0.3); },
      source, tol);
  replay_trajectory<T>("sgd_plain_wd", sgd_plain_wd<T>, nullptr, source, tol);
}

}  // namespace

TEMPLATE_TEST_CASE("SGD trajectories match PyTorch", "[golden][optim][sgd]", float, double) {
  replay_all<TestType>(GradSource::Gkd, gkd::test::trajectory_tolerance<TestType>());
}

TEMPLATE_TEST_CASE("SGD arithmetic reproduces PyTorch's bits given its gradients", "[golden][optim][sgd]", float,
                   double) {
  replay_all<TestType>(GradSource::PyTorch, gkd::test::exact_replay_tolerance<TestType>(false));
}

TEST_CASE("SGD follows the documented update by hand", "[optim][sgd]") {
  auto p = Tensor<double>::from({2}, {1.0, -2.0}).requires_grad();
  SGD<double> opt({p}, {.lr = 0.5, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.1});
  p.set_grad(Tensor<double>::from({2}, {0.2, 0.4}));
  opt.step();
  // g = grad + 0.1 p = [0.3, 0.2]; first buffer = g; p -= 0.5 g
  CHECK(p.at({0}) == Approx(1.0 - 0.5 * 0.3));
  CHECK(p.at({1}) == Approx(-2.0 - 0.5 * 0.2));
  REQUIRE(opt.state(0).has("momentum_buffer"));
  CHECK(opt.state(0).at("momentum_buffer").at({0}) == Approx(0.3));
  CHECK(opt.state(0).step == 1);
  p.set_grad(Tensor<double>::from({2}, {0.0, 0.0}));
  const double p0 = p.at({0});
  opt.step();
  // g = 0.1 p; buf = 0.9 * 0.3 + 0.5 g; p -= 0.5 buf
  const double g0 = 0.1 * p0, buf0 = 0.9 * 0.3 + 0.5 * g0;
  CHECK(p.at({0}) == Approx(p0 - 0.5 * buf0));
  CHECK(opt.state(0).at("momentum_buffer").at({0}) == Approx(buf0));
  const auto named = opt.named_state();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "0.momentum_buffer");
}

TEST_CASE("SGD skips parameters without a gradient and keeps groups apart", "[optim][sgd]") {
  auto a = Tensor<float>::full({3}, 1.f).requires_grad();
  auto b = Tensor<float>::full({2, 2}, 1.f).requires_grad();
  auto c = Tensor<float>::full({4}, 1.f).requires_grad();
  SGD<float> opt({a, b}, {.lr = 0.1f, .momentum = 0.5});
  opt.add_param_group({c}, 1.0, 0.5);
  REQUIRE(opt.num_groups() == 2);
  REQUIRE(opt.num_params() == 3);
  CHECK(opt.lr(0) == Approx(0.1));
  CHECK(opt.lr(1) == 1.0);
  CHECK(opt.group(1).weight_decay == 0.5);
  a.set_grad(Tensor<float>::ones({3}));
  c.set_grad(Tensor<float>::ones({4}));
  opt.step();
  CHECK(a.at({0}) == Approx(0.9f));
  CHECK(b.at({1, 1}) == 1.f);  // no gradient: untouched, no state
  CHECK(c.at({2}) == Approx(1.f - 1.f * (1.f + 0.5f)));
  CHECK(opt.state(1).step == 0);
  CHECK(opt.state(1).buffers.empty());
  CHECK(opt.state(2).step == 1);
  CHECK(opt.param(2).data() == c.data());

  opt.zero_grad(false);  // zeroes in place
  REQUIRE(a.grad().defined());
  CHECK(a.grad().at({1}) == 0.f);
  opt.zero_grad();  // drops
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(c.grad().defined());

  opt.set_lr(1, 0.25);
  CHECK(opt.lr(1) == 0.25);
}

TEST_CASE("SGD maximize ascends", "[optim][sgd]") {
  auto p = Tensor<double>::from({1}, {1.0}).requires_grad();
  SGD<double> opt({p}, {.lr = 0.5, .maximize = true});
  p.set_grad(Tensor<double>::from({1}, {2.0}));
  opt.step();
  CHECK(p.item() == 2.0);
}

TEST_CASE("SGD updates large parameters in parallel exactly as serially", "[optim][sgd]") {
  const std::int64_t n = (1 << 16) + 7;
  auto p = gkd::test::random<double>({n}, 5).requires_grad();
  auto q = p.detach().clone().requires_grad();
  SGD<double> big({p}, {.lr = 0.3, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01});
  auto g = gkd::test::random<double>({n}, 6);
  for (int k = 0; k < 3; ++k) {
    p.set_grad(g);
    big.step();
  }
  // Serial reference: the same per-element formula on a slice small enough to stay serial.
  auto qs = q.detach().narrow(0, n - 1000, 1000).clone().requires_grad();
  SGD<double> small({qs}, {.lr = 0.3, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01});
  for (int k = 0; k < 3; ++k) {
    qs.set_grad(g.narrow(0, n - 1000, 1000).clone());
    small.step();
  }
  gkd::test::require_close(p.detach().narrow(0, n - 1000, 1000), qs.detach(), 0.0, "parallel vs serial");
}

TEST_CASE("SGD bad input raises gkd::Error naming SGD and the values", "[errors][optim][sgd]") {
  auto p = Tensor<float>::zeros({2}).requires_grad();
  using Catch::Contains;
  REQUIRE_THROWS_WITH(SGD<float>({p}, {.lr = -0.1}), Contains("SGD") && Contains("learning rate") && Contains("-0.1"));
  REQUIRE_THROWS_WITH(SGD<float>({p}, {.momentum = -0.5}), Contains("SGD") && Contains("momentum -0.5"));
  REQUIRE_THROWS_WITH(SGD<float>({p}, {.nesterov = true}), Contains("SGD") && Contains("Nesterov") && Contains("momentum 0"));
  REQUIRE_THROWS_WITH(SGD<float>({p}, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                      Contains("SGD") && Contains("dampening 0.1"));
  REQUIRE_THROWS_WITH(SGD<float>({p}, {.weight_decay = -1}), Contains("SGD") && Contains("weight_decay -1"));
  REQUIRE_THROWS_WITH(SGD<float>(std::vector<Tensor<float>>{}, {}), Contains("SGD") && Contains("empty parameter list"));
  REQUIRE_THROWS_WITH(SGD<float>(std::vector<ParamGroupOptions<float>>{}, {}), Contains("SGD") && Contains("empty"));
  auto frozen = Tensor<float>::zeros({3, 4});
  REQUIRE_THROWS_WITH(SGD<float>({frozen}, {}), Contains("SGD") && Contains("does not require grad") && Contains("[3, 4]"));
  REQUIRE_THROWS_WITH(SGD<float>({p, p}, {}), Contains("SGD") && Contains("already appears"));
  auto nonleaf = mul(p, 2.f);
  REQUIRE_THROWS_WITH(SGD<float>({nonleaf}, {}), Contains("SGD") && Contains("mul_scalar") && Contains("leaf"));
  REQUIRE_THROWS_WITH(SGD<float>({Tensor<float>()}, {}), Contains("SGD") && Contains("undefined"));
  auto t = Tensor<float>::zeros({3, 2}).transpose(0, 1).detach().requires_grad();
  REQUIRE_THROWS_WITH(SGD<float>({t}, {}), Contains("SGD") && Contains("not contiguous"));

  SGD<float> opt({p}, {.lr = 0.1f});
  REQUIRE_THROWS_WITH(opt.add_param_group({p}), Contains("SGD") && Contains("already appears"));
  REQUIRE_THROWS_WITH(opt.add_param_group(std::vector<Tensor<float>>{}), Contains("SGD") && Contains("empty"));
  REQUIRE_THROWS_WITH(opt.set_lr(0, -2.0), Contains("SGD") && Contains("-2"));
  REQUIRE_THROWS_WITH(opt.set_lr(3, 0.1), Contains("SGD") && Contains("group index 3"));
  REQUIRE_THROWS_WITH(opt.state(1), Contains("SGD") && Contains("parameter index 1"));
  // A wrongly shaped gradient is refused where it is set, before any step could use it.
  REQUIRE_THROWS_WITH(p.set_grad(Tensor<float>::zeros({3})), Contains("set_grad") && Contains("[3]") && Contains("[2]"));
}
