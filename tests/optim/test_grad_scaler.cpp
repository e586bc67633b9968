// SPDX-License-Identifier: Apache-2.0
// gkd::GradScaler: loss scaling, exact unscaling, skipped steps on inf/NaN, back-off and growth of
// the scale, the once-per-iteration contract, option validation, the disabled scaler, saved state,
// and a replay of torch.amp.GradScaler("cpu") trajectories (tests/golden/grad_scaler.txt).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "gkd/io/checkpoint.hpp"
#include "gkd/ops/elementwise.hpp"
#include "gkd/ops/reduce.hpp"
#include "gkd/optim/adam.hpp"
#include "gkd/optim/grad_scaler.hpp"
#include "gkd/optim/sgd.hpp"
#include "optim/trajectory.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor<double> param(const Shape& shape, std::uint64_t seed) {
  return test::random<double>(shape, seed).requires_grad();
}

/// Gives `p` the gradient `g` (a copy: unscale works in place).
void set_grad(Tensor<double>& p, const Tensor<double>& g) { p.set_grad(g.clone()); }

bool same_bits(const Tensor<double>& a, const Tensor<double>& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  if (x.size() != y.size()) return false;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!(x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i])))) return false;
  return true;
}

}  // namespace

TEST_CASE("GradScaler defaults and scale(): loss times the scale, differentiable", "[grad_scaler]") {
  GradScaler<double> scaler;
  CHECK(scaler.get_scale() == 65536.0);
  CHECK(scaler.growth_tracker() == 0);
  CHECK(scaler.options().growth_factor == 2.0);
  CHECK(scaler.options().backoff_factor == 0.5);
  CHECK(scaler.options().growth_interval == 2000);
  CHECK(scaler.is_enabled());

  Tensor<double> w = param({2, 3}, 1);
  const Tensor<double> loss = sum(mul(w, w));
  const Tensor<double> scaled = scaler.scale(loss);
  CHECK(scaled.item() == loss.item() * 65536.0);
  scaled.backward();
  REQUIRE(w.grad().defined());
  CHECK(same_bits(w.grad(), mul(w.detach(), 2.0 * 65536.0)));

  Tensor<float> v = test::random<float>({4}, 2).requires_grad();
  GradScaler<float> scaler_f({.init_scale = 8.0});
  scaler_f.scale(sum(v)).backward();
  CHECK(v.grad().to_vector() == std::vector<float>(4, 8.0f));
  CHECK_THROWS_AS(scaler.scale(Tensor<double>()), Error);
}

TEST_CASE("GradScaler unscale() divides exactly by power-of-two scales", "[grad_scaler]") {
  for (double s : {1.0, 2.0, 1024.0, 65536.0, 0.25}) {
    INFO("scale " << s);
    Tensor<double> w = param({3, 4}, 3), b = param({5}, 4), unused = param({2}, 5);
    SGD<double> opt({w, b, unused}, {.lr = 0.1});
    GradScaler<double> scaler({.init_scale = s});
    const Tensor<double> gw = test::random<double>({3, 4}, 6);
    set_grad(w, mul(gw, s));
    // b's gradient is a non-contiguous view (column 0 of a [5, 2] tensor): unscaled through its strides
    const Tensor<double> gb = test::random<double>({5, 2}, 8);
    const Tensor<double> gb_storage = mul(gb, s);
    b.set_grad(gb_storage.select(1, 0));
    REQUIRE(!b.grad().is_contiguous());
    scaler.unscale(opt);
    CHECK(same_bits(w.grad(), gw));
    CHECK(same_bits(b.grad(), gb.select(1, 0)));
    CHECK(same_bits(gb_storage.select(1, 1), mul(gb, s).select(1, 1)));  // the rest of the storage untouched
    CHECK(!unused.grad().defined());
    const Tensor<double> w_before = w.detach().clone();
    CHECK(scaler.step(opt));  // already unscaled: steps with the true gradient
    CHECK(same_bits(w.detach(), sub(w_before, mul(gw, 0.1))));
    scaler.update();
  }
}

TEST_CASE("GradScaler skips the step on inf or NaN gradients and backs off the scale", "[grad_scaler]") {
  for (double bad : {kInf, -kInf, kNaN}) {
    INFO("bad value " << bad);
    Tensor<double> w = param({2, 2}, 11), b = param({3}, 12);
    Adam<double> opt({w, b}, {.lr = 0.01});
    GradScaler<double> scaler({.init_scale = 1024.0, .growth_interval = 100});
    set_grad(w, test::random<double>({2, 2}, 13));
    set_grad(b, test::random<double>({3}, 14));
    CHECK(scaler.step(opt));  // one clean step creates Adam's state
    scaler.update();
    CHECK(scaler.get_scale() == 1024.0);
    CHECK(scaler.growth_tracker() == 1);

    const Tensor<double> w_before = w.detach().clone(), b_before = b.detach().clone();
    const Tensor<double> avg_before = opt.state(0).at("exp_avg").clone();
    const Tensor<double> sq_before = opt.state(1).at("exp_avg_sq").clone();
    Tensor<double> gb = test::random<double>({3}, 15);
    gb.data()[1] = bad;
    set_grad(w, test::random<double>({2, 2}, 16));
    set_grad(b, gb);
    CHECK_FALSE(scaler.step(opt));
    CHECK(same_bits(w.detach(), w_before));
    CHECK(same_bits(b.detach(), b_before));
    CHECK(opt.state(0).step == 1);
    CHECK(opt.state(1).step == 1);
    CHECK(same_bits(opt.state(0).at("exp_avg"), avg_before));
    CHECK(same_bits(opt.state(1).at("exp_avg_sq"), sq_before));
    CHECK(scaler.get_scale() == 1024.0);  // changes only in update()
    scaler.update();
    CHECK(scaler.get_scale() == 512.0);
    CHECK(scaler.growth_tracker() == 0);

    set_grad(w, test::random<double>({2, 2}, 17));
    set_grad(b, test::random<double>({3}, 18));
    CHECK(scaler.step(opt));
    CHECK(opt.state(0).step == 2);
    scaler.update();
    CHECK(scaler.growth_tracker() == 1);
  }
}

TEST_CASE("GradScaler grows the scale after growth_interval clean iterations", "[grad_scaler]") {
  Tensor<double> w = param({3}, 21);
  SGD<double> opt({w}, {.lr = 0.01});
  GradScaler<double> scaler({.init_scale = 16.0, .growth_factor = 4.0, .backoff_factor = 0.25, .growth_interval = 3});
  auto iterate = [&](double bad) {
    Tensor<double> g = test::random<double>({3}, 22);
    g.data()[0] = bad;
    set_grad(w, g);
    const bool stepped = scaler.step(opt);
    scaler.update();
    return stepped;
  };
  CHECK(iterate(1.0));
  CHECK(iterate(1.0));
  CHECK(scaler.get_scale() == 16.0);
  CHECK(scaler.growth_tracker() == 2);
  CHECK(iterate(1.0));  // third clean iteration: growth
  CHECK(scaler.get_scale() == 64.0);
  CHECK(scaler.growth_tracker() == 0);
  CHECK(iterate(1.0));
  CHECK(iterate(1.0));
  CHECK_FALSE(iterate(kNaN));  // resets the tracker
  CHECK(scaler.get_scale() == 16.0);
  CHECK(scaler.growth_tracker() == 0);
  CHECK(iterate(1.0));
  CHECK(iterate(1.0));
  CHECK(scaler.get_scale() == 16.0);
  CHECK(iterate(1.0));
  CHECK(scaler.get_scale() == 64.0);

  // a growth that would overflow float keeps the scale (PyTorch's guard) and restarts the tracker
  GradScaler<double> top({.init_scale = std::ldexp(1.0, 127), .growth_interval = 1});
  set_grad(w, test::random<double>({3}, 23));
  CHECK(top.step(opt));
  top.update();
  CHECK(top.get_scale() == std::ldexp(1.0, 127));
  CHECK(top.growth_tracker() == 0);
}

TEST_CASE("GradScaler enforces one unscale and one step per optimizer per iteration", "[grad_scaler]") {
  Tensor<double> w = param({2}, 31);
  SGD<double> opt({w}, {.lr = 0.1});
  GradScaler<double> scaler({.init_scale = 4.0});
  CHECK_THROWS_AS(scaler.update(), Error);  // no inf checks recorded yet
  set_grad(w, test::random<double>({2}, 32));
  scaler.unscale(opt);
  const Tensor<double> once = w.grad().clone();
  CHECK_THROWS_AS(scaler.unscale(opt), Error);
  CHECK(same_bits(w.grad(), once));  // the failed call left the gradient alone
  CHECK(scaler.step(opt));
  CHECK_THROWS_AS(scaler.step(opt), Error);
  CHECK_THROWS_AS(scaler.unscale(opt), Error);
  scaler.update();
  CHECK_THROWS_AS(scaler.update(), Error);
  set_grad(w, test::random<double>({2}, 33));
  CHECK_NOTHROW(scaler.unscale(opt));  // a new iteration
  CHECK(scaler.step(opt));
  scaler.update();
  CHECK(scaler.growth_tracker() == 2);
}

TEST_CASE("GradScaler with two optimizers: an inf in either backs off, each steps on its own", "[grad_scaler]") {
  Tensor<double> a = param({2}, 41), c = param({2}, 42);
  SGD<double> opt_a({a}, {.lr = 0.1}), opt_c({c}, {.lr = 0.1});
  GradScaler<double> scaler({.init_scale = 8.0});
  set_grad(a, test::random<double>({2}, 43));
  set_grad(c, Tensor<double>::from({2}, {1.0, kInf}));
  const Tensor<double> a_before = a.detach().clone(), c_before = c.detach().clone();
  CHECK(scaler.step(opt_a));
  CHECK_FALSE(scaler.step(opt_c));
  CHECK(!same_bits(a.detach(), a_before));
  CHECK(same_bits(c.detach(), c_before));
  scaler.update();
  CHECK(scaler.get_scale() == 4.0);
}

TEST_CASE("GradScaler validates its options", "[grad_scaler]") {
  for (double s : {0.0, -1.0, kInf, kNaN, 1e39, 1e-50})
    CHECK_THROWS_AS(GradScaler<double>({.init_scale = s}), Error);
  for (double g : {1.0, 0.5, -2.0, kInf, kNaN}) CHECK_THROWS_AS(GradScaler<double>({.growth_factor = g}), Error);
  for (double b : {0.0, 1.0, 1.5, -0.5, kNaN}) CHECK_THROWS_AS(GradScaler<double>({.backoff_factor = b}), Error);
  for (std::int64_t n : {0, -3}) CHECK_THROWS_AS(GradScaler<double>({.growth_interval = n}), Error);
  CHECK_NOTHROW(GradScaler<double>({.init_scale = 0.5, .growth_factor = 1.001, .backoff_factor = 0.999,
                                    .growth_interval = 1}));
  // the float range boundary: (2 - 2^-24) * 2^127 rounds to inf in float, the double below it to FLT_MAX
  const double rounds_to_inf = std::ldexp(2.0 - std::ldexp(1.0, -24), 127);
  CHECK_THROWS_AS(GradScaler<double>({.init_scale = rounds_to_inf}), Error);
  CHECK(GradScaler<double>({.init_scale = std::nextafter(rounds_to_inf, 0.0)}).get_scale() ==
        static_cast<double>(std::numeric_limits<float>::max()));
  try {
    GradScaler<double>({.backoff_factor = 2.0});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("GradScaler") && Catch::Contains("backoff_factor"));
  }
}

TEST_CASE("A disabled GradScaler passes the loss through and always steps", "[grad_scaler]") {
  Tensor<double> w = param({3}, 51);
  SGD<double> opt({w}, {.lr = 0.5});
  GradScaler<double> scaler({.enabled = false});
  CHECK(scaler.get_scale() == 1.0);
  const Tensor<double> loss = sum(mul(w, w));
  const Tensor<double> same = scaler.scale(loss);
  CHECK(same.data() == loss.data());
  const Tensor<double> g = Tensor<double>::from({3}, {1.0, kInf, 2.0});
  set_grad(w, g);
  scaler.unscale(opt);
  CHECK(same_bits(w.grad(), g));  // untouched
  const Tensor<double> before = w.detach().clone();
  CHECK(scaler.step(opt));
  CHECK(std::isinf(w.detach().to_vector()[1]));  // stepped with the inf, as plain opt.step()
  CHECK(w.detach().to_vector()[0] == before.to_vector()[0] - 0.5);
  CHECK(scaler.step(opt));  // no per-iteration bookkeeping
  CHECK_NOTHROW(scaler.update());
  CHECK(scaler.get_scale() == 1.0);
  scaler.load_state({.scale = 2.0, .growth_tracker = 5});  // no-op
  CHECK(scaler.get_scale() == 1.0);
  std::map<std::string, std::string> saved;
  scaler.write_state(saved);
  CHECK(saved.empty());
}

TEST_CASE("GradScaler state round-trips, also through a checkpoint's user strings", "[grad_scaler]") {
  Tensor<double> w = param({2}, 61);
  SGD<double> opt({w}, {.lr = 0.1});
  GradScaler<double> scaler({.init_scale = 1000.0, .growth_factor = 1.5, .backoff_factor = 0.3, .growth_interval = 4});
  for (double bad : {1.0, kInf, 1.0, 1.0}) {
    set_grad(w, Tensor<double>::from({2}, {bad, 1.0}));
    scaler.step(opt);
    scaler.update();
  }
  const GradScalerState s = scaler.state();
  CHECK(s.scale == static_cast<double>(static_cast<float>(1000.0 * 0.3)));
  CHECK(s.growth_tracker == 2);

  GradScaler<double> restored({.init_scale = 1000.0, .growth_factor = 1.5, .backoff_factor = 0.3, .growth_interval = 4});
  restored.load_state(s);
  CHECK(restored.get_scale() == scaler.get_scale());
  CHECK(restored.growth_tracker() == 2);
  CHECK_THROWS_AS(restored.load_state({.scale = 0.0}), Error);
  CHECK_THROWS_AS(restored.load_state({.scale = kNaN}), Error);
  CHECK_THROWS_AS(restored.load_state({.scale = 2.0, .growth_tracker = -1}), Error);

  io::TrainingState training;
  scaler.write_state(training.user);
  const auto path = std::filesystem::temp_directory_path() / "gkd_test_grad_scaler.safetensors";
  io::save_checkpoint<double>(path, {{"w", w}}, &opt, training);
  const io::LoadedCheckpoint loaded = io::load_checkpoint<double>(path, {{"w", w}}, &opt);
  std::filesystem::remove(path);
  GradScaler<double> resumed({.init_scale = 1000.0, .growth_factor = 1.5, .backoff_factor = 0.3, .growth_interval = 4});
  resumed.read_state(loaded.state.user);
  CHECK(resumed.get_scale() == scaler.get_scale());
  CHECK(resumed.growth_tracker() == 2);

  std::map<std::string, std::string> broken = training.user;
  broken.erase("grad_scaler.growth_tracker");
  CHECK_THROWS_AS(resumed.read_state(broken), Error);
  broken = training.user;
  broken["grad_scaler.scale"] = "big";
  CHECK_THROWS_AS(resumed.read_state(broken), Error);
}

namespace {

/// Replays tests/golden/grad_scaler.txt case `name`: the scripted gradients through
/// scale(loss).backward(), step, update; compares scale, tracker, steps and parameters each iteration.
template <Real T, class MakeOptimizer>
void replay_golden(const std::string& name, GradScalerOptions options, MakeOptimizer make_optimizer, bool uses_sqrt) {
  const test::Golden golden("grad_scaler");
  const std::string dt(dtype_name<T>());
  const std::string tag = name + "." + dt;
  INFO(tag);
  const Tensor<T> G = golden.get<T>("problem." + dt + ".G"), g = golden.get<T>("problem." + dt + ".g");
  Tensor<T> W = golden.get<T>("problem.W0").requires_grad(), b = golden.get<T>("problem.b0").requires_grad();
  auto opt = make_optimizer(W, b);
  GradScaler<T> scaler(options);
  const auto scales = golden.get<double>(tag + ".scale").to_vector();
  const auto trackers = golden.get<double>(tag + ".tracker").to_vector();
  const auto stepped = golden.get<double>(tag + ".stepped").to_vector();
  const Tensor<T> W_expected = golden.get<T>(tag + ".W"), b_expected = golden.get<T>(tag + ".b");
  const double tol = test::exact_replay_tolerance<T>(uses_sqrt);
  std::int64_t steps = 0;
  for (std::int64_t k = 0; k < G.shape()[0]; ++k) {
    INFO("iteration " << k + 1);
    opt->zero_grad();
    scaler.scale(add(sum(mul(W, G.select(0, k))), sum(mul(b, g.select(0, k))))).backward();
    const bool did_step = scaler.step(*opt);
    scaler.update();
    steps += did_step;
    CHECK(did_step == (stepped[static_cast<std::size_t>(k)] == 1.0));
    CHECK(scaler.get_scale() == scales[static_cast<std::size_t>(k)]);
    CHECK(static_cast<double>(scaler.growth_tracker()) == trackers[static_cast<std::size_t>(k)]);
    CHECK(opt->state(0).step == steps);
    test::require_close(W.detach(), W_expected.select(0, k), tol, tag + ".W");
    test::require_close(b.detach(), b_expected.select(0, k), tol, tag + ".b");
  }
  if (golden.has(tag + ".opt_step")) CHECK(static_cast<double>(steps) == golden.get<double>(tag + ".opt_step").to_vector().back());
}

template <Real T>
void replay_all() {
  replay_golden<T>(
      "sgd", {.init_scale = 1024.0, .growth_factor = 2.0, .backoff_factor = 0.5, .growth_interval = 3},
      [](const Tensor<T>& W, const Tensor<T>& b) {
        return std::make_unique<SGD<T>>(std::vector<Tensor<T>>{W, b}, SGDOptions{.lr = 0.1, .momentum = 0.9});
      },
      false);
  replay_golden<T>(
      "adam", {.init_scale = 1000.0, .growth_factor = 1.5, .backoff_factor = 0.3, .growth_interval = 2},
      [](const Tensor<T>& W, const Tensor<T>& b) {
        return std::make_unique<Adam<T>>(std::vector<Tensor<T>>{W, b},
                                         AdamOptions{.lr = 0.05, .beta1 = 0.9, .beta2 = 0.99});
      },
      true);
}

}  // namespace

TEST_CASE("GradScaler replays torch.amp.GradScaler trajectories (float64)", "[grad_scaler][golden]") {
  replay_all<double>();
}

TEST_CASE("GradScaler replays torch.amp.GradScaler trajectories (float32)", "[grad_scaler][golden]") {
  replay_all<float>();
}
