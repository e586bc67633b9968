// SPDX-License-Identifier: Apache-2.0
// gkd::GradScaler on the GPU against the CPU: the same parameters and the same scripted gradients
// (reached through scale(loss).backward(), with an inf, a NaN in a late chunk of a large parameter
// and a finite value that overflows once scaled) on both devices; every iteration must step or skip
// alike, leave the same scale and growth tracker, and the same parameters and optimizer state.
//
// Tolerances as tests/cuda/test_optim.cpp: the unscaling is one correctly rounded multiplication on
// both devices (identical gradients), and the fused optimizers repeat the CPU arithmetic, so the
// results are expected to be identical; 1e-12 (float64) and 1e-6 (float32) relative only leave room
// for an ulp. Scales, trackers and step decisions are compared exactly.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gkd/ops/elementwise.hpp"
#include "gkd/ops/reduce.hpp"
#include "gkd/optim/adam.hpp"
#include "gkd/optim/grad_scaler.hpp"
#include "gkd/optim/sgd.hpp"
#include "support/check.hpp"

using gkd::Tensor;

namespace {

const std::vector<gkd::Shape> kShapes = {{7}, {40009}, {3, 5}};  // the second spans several chunks
constexpr int kIterations = 9;

template <gkd::Real T>
constexpr double tolerance() {
  return std::is_same_v<T, double> ? 1e-12 : 1e-6;
}

/// Whether iteration k's gradients hold a non-finite value (after scaling).
bool bad_iteration(int k) { return k == 2 || k == 3 || k == 6; }

/// The gradient of the unscaled loss for parameter i at iteration k (on the host).
template <gkd::Real T>
Tensor<T> scripted_gradient(const gkd::Shape& shape, int k, std::size_t i) {
  Tensor<T> g = gkd::test::random<T>(shape, 500 + 10 * static_cast<std::uint64_t>(k) + i);
  if (k == 2 && i == 0) g.data()[3] = std::numeric_limits<T>::infinity();
  if (k == 3 && i == 1) g.data()[40001] = std::numeric_limits<T>::quiet_NaN();  // in the last chunk
  if (k == 6 && i == 2) g.data()[7] = std::numeric_limits<T>::max() / 2;         // overflows once scaled
  return g;
}

/// Requires equal shapes and values within `tol` (relative to max(|e|, 1% of max|e|)).
template <gkd::Real T>
void require_match(const Tensor<T>& actual, const Tensor<T>& expected, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(actual.shape() == expected.shape());
  const std::vector<T> a = actual.to_vector(), e = expected.to_vector();
  double scale = 0;
  for (T v : e) scale = std::max(scale, std::abs(static_cast<double>(v)));
  const double floor = std::max(scale * 1e-2, 1e-300);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(static_cast<double>(a[i]) - static_cast<double>(e[i])) /
                       std::max(std::abs(static_cast<double>(e[i])), floor);
    if (!(err <= worst)) worst = err;  // NaN fails below
  }
  INFO("worst relative error " << worst << ", tolerance " << tol);
  REQUIRE(worst <= tol);
}

template <gkd::Real T>
using MakeOptimizer = std::function<std::unique_ptr<gkd::Optimizer<T>>(const std::vector<Tensor<T>>&)>;

/// kIterations of zero_grad, scale(loss).backward(), step, update on each device, compared every iteration.
template <gkd::Real T>
void require_gpu_scaler_matches_cpu(const MakeOptimizer<T>& make, const std::string& what) {
  INFO(what << " (" << gkd::dtype_name<T>() << ")");
  std::vector<Tensor<T>> cpu, gpu;
  for (std::size_t i = 0; i < kShapes.size(); ++i) {
    const Tensor<T> init = gkd::test::random<T>(kShapes[i], 400 + i);
    cpu.push_back(init.clone().requires_grad());
    gpu.push_back(init.cuda().requires_grad());
  }
  auto opt_cpu = make(cpu);
  auto opt_gpu = make(gpu);
  const gkd::GradScalerOptions options{.init_scale = 1000.0, .growth_factor = 1.5, .backoff_factor = 0.3,
                                       .growth_interval = 2};
  gkd::GradScaler<T> scaler_cpu(options), scaler_gpu(options);
  for (int k = 1; k <= kIterations; ++k) {
    INFO("iteration " << k);
    opt_cpu->zero_grad();
    opt_gpu->zero_grad();
    Tensor<T> loss_cpu, loss_gpu;
    for (std::size_t i = 0; i < kShapes.size(); ++i) {
      const Tensor<T> g = scripted_gradient<T>(kShapes[i], k, i);
      const Tensor<T> term_cpu = gkd::sum(gkd::mul(cpu[i], g)), term_gpu = gkd::sum(gkd::mul(gpu[i], g.cuda()));
      loss_cpu = i == 0 ? term_cpu : gkd::add(loss_cpu, term_cpu);
      loss_gpu = i == 0 ? term_gpu : gkd::add(loss_gpu, term_gpu);
    }
    const Tensor<T> scaled_gpu = scaler_gpu.scale(loss_gpu);
    REQUIRE(scaled_gpu.device().is_cuda());
    scaler_cpu.scale(loss_cpu).backward();
    scaled_gpu.backward();
    for (std::size_t i = 0; i < kShapes.size(); ++i) REQUIRE(gpu[i].grad().device().is_cuda());
    const bool stepped_cpu = scaler_cpu.step(*opt_cpu);
    const bool stepped_gpu = scaler_gpu.step(*opt_gpu);
    REQUIRE(stepped_cpu == !bad_iteration(k));
    REQUIRE(stepped_gpu == stepped_cpu);
    for (std::size_t i = 0; i < kShapes.size(); ++i)
      if (stepped_cpu) require_match(gpu[i].grad(), cpu[i].grad(), 0.0, "unscaled gradient " + std::to_string(i));
    scaler_cpu.update();
    scaler_gpu.update();
    REQUIRE(scaler_gpu.get_scale() == scaler_cpu.get_scale());
    REQUIRE(scaler_gpu.growth_tracker() == scaler_cpu.growth_tracker());
    for (std::size_t i = 0; i < kShapes.size(); ++i) {
      REQUIRE(gpu[i].device().is_cuda());
      require_match(gpu[i].detach(), cpu[i].detach(), tolerance<T>(), "parameter " + std::to_string(i));
      REQUIRE(opt_gpu->state(i).step == opt_cpu->state(i).step);
    }
  }
  REQUIRE(opt_cpu->state(0).step == kIterations - 3);  // the three bad iterations were skipped
  REQUIRE(scaler_cpu.get_scale() != options.init_scale);
  const auto gpu_state = opt_gpu->named_state(), cpu_state = opt_cpu->named_state();
  REQUIRE(gpu_state.size() == cpu_state.size());
  for (std::size_t j = 0; j < cpu_state.size(); ++j)
    require_match(gpu_state[j].second, cpu_state[j].second, tolerance<T>(), "state " + cpu_state[j].first);
}

}  // namespace

TEMPLATE_TEST_CASE("GradScaler on the GPU steps, skips and rescales as on the CPU", "[cuda][grad_scaler]", float,
                   double) {
  using T = TestType;
  require_gpu_scaler_matches_cpu<T>(
      [](const std::vector<Tensor<T>>& ps) {
        return std::make_unique<gkd::SGD<T>>(ps, gkd::SGDOptions{.lr = 0.05, .momentum = 0.9});
      },
      "SGD momentum");
  require_gpu_scaler_matches_cpu<T>(
      [](const std::vector<Tensor<T>>& ps) {
        return std::make_unique<gkd::Adam<T>>(ps, gkd::AdamOptions{.lr = 1e-2});
      },
      "Adam");
}

TEMPLATE_TEST_CASE("GradScaler unscales non-contiguous GPU gradients in place", "[cuda][grad_scaler]", float,
                   double) {
  using T = TestType;
  const Tensor<T> storage = gkd::mul(gkd::test::random<T>({6, 2}, 601), T(64));
  Tensor<T> p_cpu = gkd::test::random<T>({6}, 602).requires_grad();
  Tensor<T> p_gpu = p_cpu.detach().cuda().requires_grad();
  const Tensor<T> storage_cpu = storage.clone(), storage_gpu = storage.cuda();
  p_cpu.set_grad(storage_cpu.select(1, 1));
  p_gpu.set_grad(storage_gpu.select(1, 1));
  REQUIRE(!p_gpu.grad().is_contiguous());
  gkd::SGD<T> opt_cpu({p_cpu}, {.lr = 0.1}), opt_gpu({p_gpu}, {.lr = 0.1});
  gkd::GradScaler<T> scaler_cpu({.init_scale = 64.0}), scaler_gpu({.init_scale = 64.0});
  scaler_cpu.unscale(opt_cpu);
  scaler_gpu.unscale(opt_gpu);
  require_match(storage_gpu, storage_cpu, 0.0, "gradient storage after unscale");
  require_match(storage_cpu.select(1, 1), gkd::test::random<T>({6, 2}, 601).select(1, 1), 0.0, "unscaled column");
  REQUIRE(scaler_gpu.step(opt_gpu));
  REQUIRE(scaler_cpu.step(opt_cpu));
  require_match(p_gpu.detach(), p_cpu.detach(), tolerance<T>(), "parameter");
}
