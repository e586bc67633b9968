// SPDX-License-Identifier: Apache-2.0
// The fused GPU optimizers (one multi-tensor launch per parameter group) and gradient clipping
// against the CPU implementations: the same initial parameters and the same sequence of random
// gradients, several steps on each device, then every parameter and every state buffer compared.
//
// Tolerances: the kernels repeat the CPU update operation by operation with the same roundings
// (the host's choice of fused multiply-adds, correctly rounded division and square root, the same
// scalars computed in double on the host), so the results are expected to be identical; the
// tolerances, 1e-12 relative in float64 and 1e-6 (about 8 ulps) in float32, only leave room for an
// ulp here and there and would catch any wrong term, sign, scalar or skipped element. The norms of
// clip_grad_norm are sums of up to 1e6 terms in double in a different order than the CPU's
// sequential loop (typical difference ~sqrt(n) * 1.1e-16 = 1e-13 relative), rounded to T.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gkd/cuda/memory.hpp"
#include "gkd/optim/adam.hpp"
#include "gkd/optim/clip.hpp"
#include "gkd/optim/sgd.hpp"
#include "support/check.hpp"

using gkd::Tensor;

namespace {

/// Shapes of the parameters: group 0 holds the first three (odd sizes, the third spanning several
/// chunks of 16384 elements; above a million in the large runs), group 1 the last. The option sweeps
/// use the small set to keep the test fast; one run per optimizer family uses the large one.
using Shapes = std::vector<gkd::Shape>;
const Shapes kSmall = {{1}, {7}, {40009}, {3, 5}};
const Shapes kLarge = {{1}, {7}, {1000003}, {3, 5}};
constexpr int kSteps = 4;

/// A random CPU tensor, generated once per (shape, seed, stddev) and cached (randn of a million
/// values takes 0.1 s); callers clone it before changing it.
template <gkd::Real T>
const Tensor<T>& cached_random(const gkd::Shape& shape, std::uint64_t seed, T stddev = T(1)) {
  static std::map<std::tuple<gkd::Shape, std::uint64_t, T>, Tensor<T>> cache;
  auto key = std::make_tuple(shape, seed, stddev);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, gkd::test::random<T>(shape, seed, stddev)).first;
  return it->second;
}

template <gkd::Real T>
constexpr double tolerance() {
  return std::is_same_v<T, double> ? 1e-12 : 1e-6;
}

/// Requires `actual` (any device) to match `expected` within `tol` relative to max(|e|, 1% of
/// max|e|), as require_close, with non-finite values required to match exactly (NaN with NaN).
template <gkd::Real T>
void require_match(const Tensor<T>& actual, const Tensor<T>& expected, double tol, const std::string& what) {
  INFO(what << ": actual " << gkd::to_string(actual.shape()) << " expected " << gkd::to_string(expected.shape()));
  REQUIRE(actual.shape() == expected.shape());
  const std::vector<T> a = actual.to_vector(), e = expected.to_vector();
  double scale = 0;
  for (T v : e)
    if (std::isfinite(v)) scale = std::max(scale, std::abs(static_cast<double>(v)));
  const double floor = std::max(scale * 1e-2, 1e-300);
  double worst = 0;
  std::size_t at = 0, mismatched_non_finite = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(e[i])) {
      const bool same = (std::isnan(a[i]) && std::isnan(e[i])) || a[i] == e[i];
      if (!same) ++mismatched_non_finite;
      continue;
    }
    const double err = std::abs(static_cast<double>(a[i]) - static_cast<double>(e[i])) /
                       std::max(std::abs(static_cast<double>(e[i])), floor);
    if (err > worst) {
      worst = err;
      at = i;
    }
  }
  INFO("worst relative error " << worst << " at flat index " << at << " (actual "
                               << (a.empty() ? 0.0 : double(a[at])) << ", expected "
                               << (e.empty() ? 0.0 : double(e[at])) << ", tolerance " << tol << ")");
  REQUIRE(mismatched_non_finite == 0);
  REQUIRE(worst <= tol);
}

template <gkd::Real T>
std::vector<Tensor<T>> initial_params(const Shapes& shapes, gkd::Device device) {
  std::vector<Tensor<T>> ps;
  for (std::size_t i = 0; i < shapes.size(); ++i)
    ps.push_back(cached_random<T>(shapes[i], 100 + i).clone().to(device).requires_grad());
  return ps;
}

/// Whether parameter i gets a gradient at step k (so step counts differ between parameters).
bool has_grad(int k, std::size_t i) { return !((k == 2 && i == 1) || (k == 3 && i == 3)); }

/// The gradient of parameter i at step k; with `non_finite`, parameter 1's holds a NaN and an inf.
template <gkd::Real T>
Tensor<T> gradient(const gkd::Shape& shape, int k, std::size_t i, bool non_finite) {
  Tensor<T> g = cached_random<T>(shape, 1000 * static_cast<std::uint64_t>(k) + i, T(0.5 + 0.25 * k)).clone();
  if (non_finite && i == 1 && k == 3) {
    g.data()[2] = std::numeric_limits<T>::quiet_NaN();
    g.data()[4] = -std::numeric_limits<T>::infinity();
  }
  return g;
}

/// Sets step k's gradients on both copies of the parameters.
template <gkd::Real T>
void set_gradients(int k, std::vector<Tensor<T>>& cpu, std::vector<Tensor<T>>& gpu, bool non_finite = false) {
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    if (!has_grad(k, i)) {
      cpu[i].set_grad(Tensor<T>());
      gpu[i].set_grad(Tensor<T>());
      continue;
    }
    const Tensor<T> g = gradient<T>(cpu[i].shape(), k, i, non_finite);
    cpu[i].set_grad(g);
    gpu[i].set_grad(g.cuda());
  }
}

template <gkd::Real T>
using MakeOptimizer = std::function<std::unique_ptr<gkd::Optimizer<T>>(const std::vector<Tensor<T>>&)>;

/// Requires the optimizers' parameters, step counts and state buffers to agree.
template <gkd::Real T>
void require_same_state(const gkd::Optimizer<T>& gpu, const gkd::Optimizer<T>& cpu, double tol) {
  REQUIRE(gpu.num_params() == cpu.num_params());
  for (std::size_t i = 0; i < cpu.num_params(); ++i) {
    INFO("parameter " << i);
    REQUIRE(gpu.param(i).device().is_cuda());
    require_match(gpu.param(i), cpu.param(i), tol, "parameter " + std::to_string(i));
    REQUIRE(gpu.state(i).step == cpu.state(i).step);
  }
  const auto gpu_state = gpu.named_state(), cpu_state = cpu.named_state();
  REQUIRE(gpu_state.size() == cpu_state.size());
  for (std::size_t j = 0; j < cpu_state.size(); ++j) {
    REQUIRE(gpu_state[j].first == cpu_state[j].first);
    REQUIRE(gpu_state[j].second.device().is_cuda());
    require_match(gpu_state[j].second, cpu_state[j].second, tol, "state " + cpu_state[j].first);
  }
}

/// kSteps steps on the CPU and on the GPU from the same parameters and gradients; compares the
/// parameters after every step and the whole state at the end.
template <gkd::Real T>
void require_gpu_trajectory_matches_cpu(const MakeOptimizer<T>& make, const std::string& what, const Shapes& shapes,
                                        bool non_finite = false) {
  INFO(what << " (" << gkd::dtype_name<T>() << ", largest parameter " << gkd::numel(shapes[2]) << ")");
  auto cpu = initial_params<T>(shapes, gkd::kCPU);
  auto gpu = initial_params<T>(shapes, gkd::cuda_device());
  auto opt_cpu = make(cpu);
  auto opt_gpu = make(gpu);
  for (int k = 1; k <= kSteps; ++k) {
    INFO("step " << k);
    set_gradients(k, cpu, gpu, non_finite);
    opt_cpu->step();
    opt_gpu->step();
    for (std::size_t i = 0; i < cpu.size(); ++i) require_match(gpu[i], cpu[i], tolerance<T>(), "parameter");
  }
  require_same_state(*opt_gpu, *opt_cpu, tolerance<T>());
  REQUIRE(opt_cpu->state(1).step == kSteps - 1);  // the skipped steps left the step counts behind
  REQUIRE(opt_cpu->state(3).step == kSteps - 1);
}

/// Two groups: the first three parameters with the defaults, the last with its own lr and decay.
template <gkd::Real T>
std::vector<gkd::ParamGroupOptions<T>> two_groups(const std::vector<Tensor<T>>& ps, double lr, double weight_decay) {
  return {{.params = {ps[0], ps[1], ps[2]}}, {.params = {ps[3]}, .lr = lr, .weight_decay = weight_decay}};
}

const std::vector<std::pair<std::string, gkd::SGDOptions>> kSGDCases = {
    {"plain", {.lr = 0.1}},
    {"momentum", {.lr = 0.1, .momentum = 0.9}},
    {"momentum, dampening, weight decay", {.lr = 0.05, .momentum = 0.9, .dampening = 0.3, .weight_decay = 0.01}},
    {"nesterov, weight decay", {.lr = 0.05, .momentum = 0.8, .nesterov = true, .weight_decay = 0.02}},
    {"weight decay, maximize", {.lr = 0.1, .weight_decay = 0.05, .maximize = true}},
    {"nesterov, maximize", {.lr = 0.03, .momentum = 0.9, .nesterov = true, .maximize = true}},
};

struct AdamCase {
  std::string name;
  bool decoupled;
  gkd::AdamOptions options;
};
const std::vector<AdamCase> kAdamCases = {
    {"Adam defaults", false, {}},
    {"Adam weight decay, amsgrad", false, {.lr = 1e-2, .weight_decay = 0.1, .amsgrad = true}},
    {"Adam beta1 0.3 (lerp from the gradient), maximize", false, {.lr = 1e-2, .beta1 = 0.3, .maximize = true}},
    {"AdamW defaults", true, {.weight_decay = 1e-2}},
    {"AdamW amsgrad, maximize", true,
     {.lr = 5e-3, .beta2 = 0.99, .weight_decay = 0.1, .amsgrad = true, .maximize = true}},
    {"AdamW eps 1e-6, no decay", true, {.lr = 1e-2, .beta1 = 0.2, .eps = 1e-6, .weight_decay = 0}},
};

template <gkd::Real T>
std::unique_ptr<gkd::Optimizer<T>> make_adam(const std::vector<Tensor<T>>& ps, const AdamCase& c) {
  auto groups = two_groups(ps, 3 * c.options.lr, 0.5 * c.options.weight_decay + 1e-3);
  const gkd::AdamOptions& o = c.options;
  if (c.decoupled)
    return std::make_unique<gkd::AdamW<T>>(
        groups, gkd::AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad, o.maximize});
  return std::make_unique<gkd::Adam<T>>(groups, o);
}

template <gkd::Real T>
std::unique_ptr<gkd::Optimizer<T>> make_sgd(const std::vector<Tensor<T>>& ps, const gkd::SGDOptions& o) {
  return std::make_unique<gkd::SGD<T>>(two_groups(ps, 0.5 * o.lr, 0.02), o);
}

}  // namespace

TEMPLATE_TEST_CASE("GPU SGD matches the CPU over every option", "[cuda][optim]", float, double) {
  using T = TestType;
  for (const auto& [name, options] : kSGDCases)
    require_gpu_trajectory_matches_cpu<T>([o = options](const auto& ps) { return make_sgd<T>(ps, o); }, "SGD " + name,
                                          kSmall);
  require_gpu_trajectory_matches_cpu<T>([](const auto& ps) { return make_sgd<T>(ps, kSGDCases[2].second); },
                                        "SGD " + kSGDCases[2].first, kLarge);
}

TEMPLATE_TEST_CASE("GPU Adam and AdamW match the CPU over every option", "[cuda][optim]", float, double) {
  using T = TestType;
  for (const AdamCase& c : kAdamCases)
    require_gpu_trajectory_matches_cpu<T>([c](const auto& ps) { return make_adam<T>(ps, c); }, c.name, kSmall);
  for (const std::size_t c : {1, 4})
    require_gpu_trajectory_matches_cpu<T>([c](const auto& ps) { return make_adam<T>(ps, kAdamCases[c]); },
                                          kAdamCases[c].name, kLarge);
}

TEMPLATE_TEST_CASE("GPU optimizers propagate NaN and inf gradients as the CPU", "[cuda][optim]", float, double) {
  using T = TestType;
  require_gpu_trajectory_matches_cpu<T>(
      [](const auto& ps) { return make_sgd<T>(ps, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01}); },
      "SGD momentum, non-finite gradients", kSmall, true);
  require_gpu_trajectory_matches_cpu<T>([](const auto& ps) { return make_adam<T>(ps, kAdamCases[4]); },
                                        "AdamW amsgrad, non-finite gradients", kSmall, true);
  // the NaN reached the state: the comparison above matched it element for element
  auto gpu = initial_params<T>(kSmall, gkd::cuda_device());
  auto cpu = initial_params<T>(kSmall, gkd::kCPU);
  auto opt = make_adam<T>(gpu, kAdamCases[1]);
  for (int k = 1; k <= 3; ++k) {
    set_gradients(k, cpu, gpu, true);
    opt->step();
  }
  REQUIRE(std::isnan(opt->state(1).at("max_exp_avg_sq").cpu().data()[2]));
}

TEMPLATE_TEST_CASE("GPU optimizer state round-trips through the host as a checkpoint does", "[cuda][optim]", float,
                   double) {
  using T = TestType;
  const std::vector<std::pair<std::string, MakeOptimizer<T>>> makers = {
      {"SGD nesterov", [](const auto& ps) { return make_sgd<T>(ps, kSGDCases[3].second); }},
      {"Adam amsgrad", [](const auto& ps) { return make_adam<T>(ps, kAdamCases[1]); }},
  };
  for (const auto& [name, make] : makers) {
    INFO(name);
    auto cpu = initial_params<T>(kSmall, gkd::kCPU);
    auto gpu = initial_params<T>(kSmall, gkd::cuda_device());
    auto opt = make(gpu);
    for (int k = 1; k <= 2; ++k) {
      set_gradients(k, cpu, gpu);
      opt->step();
    }
    // "save": step counts and every buffer copied to the host; "load": a fresh optimizer over
    // copies of the parameters, its state restored from host tensors (as io::restore_optimizer does)
    std::vector<Tensor<T>> resumed_params;
    for (const auto& p : gpu) resumed_params.push_back(p.detach().clone().requires_grad());
    auto resumed = make(resumed_params);
    for (std::size_t i = 0; i < opt->num_params(); ++i) {
      gkd::ParamState<T> saved;
      saved.step = opt->state(i).step;
      for (const auto& [buffer, t] : opt->state(i).buffers) saved.buffers.emplace(buffer, t.cpu());
      resumed->state(i) = std::move(saved);
    }
    for (int k = 3; k <= kSteps + 1; ++k) {
      set_gradients(k, cpu, gpu);
      for (std::size_t i = 0; i < gpu.size(); ++i) resumed_params[i].set_grad(gpu[i].grad());
      opt->step();
      resumed->step();
    }
    // same device, same arithmetic: identical bits
    require_same_state(*resumed, *opt, 0.0);
  }
}

TEST_CASE("GPU optimizer steps reuse cached memory and zero_grad(false) zeroes device gradients", "[cuda][optim]") {
  auto cpu = initial_params<float>(kLarge, gkd::kCPU);
  auto gpu = initial_params<float>(kLarge, gkd::cuda_device());
  gkd::Adam<float> opt(two_groups(gpu, 1e-2, 0.0), {.lr = 1e-3, .amsgrad = true});
  set_gradients(1, cpu, gpu);
  opt.step();
  opt.step();
  const auto warm = gkd::cuda::memory_stats();
  for (int i = 0; i < 5; ++i) opt.step();
  REQUIRE(gkd::cuda::memory_stats().device_allocations == warm.device_allocations);
  opt.zero_grad(false);
  for (const auto& p : gpu) {
    REQUIRE(p.grad().defined());
    REQUIRE(p.grad().device().is_cuda());
    const auto values = p.grad().to_vector();
    REQUIRE(std::count(values.begin(), values.end(), 0.0f) == static_cast<std::ptrdiff_t>(values.size()));
  }
  // a group whose parameters all lack gradients is skipped without a launch or a state change
  opt.zero_grad();
  opt.step();
  REQUIRE(opt.state(0).step == 7);
}

TEST_CASE("GPU optimizers reject mixed CPU/CUDA groups and gradients on another device", "[cuda][optim]") {
  auto on_gpu = Tensor<float>::zeros({3}, gkd::cuda_device()).requires_grad();
  auto on_cpu = Tensor<float>::zeros({3}).requires_grad();
  using Catch::Matchers::Contains;
  REQUIRE_THROWS_WITH(gkd::SGD<float>({on_gpu, on_cpu}, {}), Contains("mixed CPU/CUDA"));
  REQUIRE_THROWS_WITH(gkd::Adam<float>({on_cpu, on_gpu}, {}), Contains("mixed CPU/CUDA"));
  // groups on different devices are fine
  gkd::SGD<float> sgd({{.params = {on_gpu}}, {.params = {on_cpu}}}, {.lr = 1.0});
  on_gpu.set_grad(Tensor<float>::ones({3}, gkd::cuda_device()));
  on_cpu.set_grad(Tensor<float>::ones({3}));
  sgd.step();
  REQUIRE(on_gpu.to_vector() == std::vector<float>{-1, -1, -1});
  REQUIRE(on_cpu.to_vector() == std::vector<float>{-1, -1, -1});
  // A gradient on the other device is refused where it is set.
  REQUIRE_THROWS_WITH(on_gpu.set_grad(Tensor<float>::ones({3})), Contains("set_grad") && Contains("on cpu"));
  REQUIRE_THROWS_WITH(on_cpu.set_grad(Tensor<float>::ones({3}, gkd::cuda_device())),
                      Contains("set_grad") && Contains("on cuda:0"));
  REQUIRE_THROWS_WITH(gkd::clip_grad_norm(std::vector<Tensor<float>>{on_gpu, on_cpu}, 1.0),
                      Contains("mixed CPU/CUDA"));
}

TEMPLATE_TEST_CASE("GPU clip_grad_norm and clip_grad_value match the CPU", "[cuda][optim][clip]", float, double) {
  using T = TestType;
  const double inf = std::numeric_limits<double>::infinity();
  // odd sizes, an empty gradient, a transposed (non-contiguous) one, and a parameter without one
  const std::vector<gkd::Shape> shapes = {{1}, {7}, {1000003}, {0}, {5, 3}};
  auto make = [&](gkd::Device device, T scale) {
    std::vector<Tensor<T>> ps;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      ps.push_back(Tensor<T>::zeros(shapes[i], device).requires_grad());
      Tensor<T> g = cached_random<T>(shapes[i], 50 + i, scale).clone().to(device);
      if (i == 4) g = cached_random<T>({3, 5}, 50 + i, scale).clone().to(device).transpose(0, 1);
      ps.back().set_grad(g);
    }
    ps.push_back(Tensor<T>::zeros({4}, device).requires_grad());
    return ps;
  };
  for (double norm_type : {2.0, 1.0, 3.0, inf}) {
    for (double max_norm : {0.5, 1e12}) {
      INFO("norm " << norm_type << ", max_norm " << max_norm);
      auto cpu = make(gkd::kCPU, T(0.01));
      auto gpu = make(gkd::cuda_device(), T(0.01));
      REQUIRE_FALSE(gpu[4].grad().is_contiguous());
      const T total_cpu = gkd::clip_grad_norm(cpu, max_norm, norm_type);
      const T total_gpu = gkd::clip_grad_norm(gpu, max_norm, norm_type);
      require_match(Tensor<T>::scalar(total_gpu), Tensor<T>::scalar(total_cpu), tolerance<T>(), "total norm");
      REQUIRE(total_gpu > T(0));
      for (std::size_t i = 0; i < 5; ++i) {
        REQUIRE(gpu[i].grad().device().is_cuda());
        require_match(gpu[i].grad(), cpu[i].grad(), tolerance<T>(), "gradient " + std::to_string(i));
      }
      REQUIRE_FALSE(gpu[5].grad().defined());
    }
  }
  auto cpu = make(gkd::kCPU, T(1));
  auto gpu = make(gkd::cuda_device(), T(1));
  gkd::clip_grad_value(cpu, 0.7);
  gkd::clip_grad_value(gpu, 0.7);
  for (std::size_t i = 0; i < 5; ++i) require_match(gpu[i].grad(), cpu[i].grad(), 0.0, "clip_grad_value");
}

TEMPLATE_TEST_CASE("GPU clip_grad_norm with non-finite gradients behaves as the CPU", "[cuda][optim][clip]", float,
                   double) {
  using T = TestType;
  for (T bad : {std::numeric_limits<T>::infinity(), std::numeric_limits<T>::quiet_NaN()}) {
    for (double norm_type : {2.0, std::numeric_limits<double>::infinity()}) {
      INFO("bad value " << bad << ", norm " << norm_type);
      std::vector<T> values(20000, T(0.5));
      values[17001] = bad;
      auto g = Tensor<T>::from({20000}, values);
      auto other = gkd::test::random<T>({33}, 7);
      auto cpu = std::vector<Tensor<T>>{Tensor<T>::zeros({20000}).requires_grad(), Tensor<T>::zeros({33}).requires_grad()};
      auto gpu = std::vector<Tensor<T>>{Tensor<T>::zeros({20000}, gkd::cuda_device()).requires_grad(),
                                        Tensor<T>::zeros({33}, gkd::cuda_device()).requires_grad()};
      cpu[0].set_grad(g.clone());
      cpu[1].set_grad(other.clone());
      gpu[0].set_grad(g.cuda());
      gpu[1].set_grad(other.cuda());
      // error_if_nonfinite: throws and leaves the gradients untouched
      REQUIRE_THROWS_WITH(gkd::clip_grad_norm(gpu, 1.0, norm_type, true), Catch::Matchers::Contains("error_if_nonfinite"));
      require_match(gpu[0].grad(), g, 0.0, "untouched gradient");
      const T total_cpu = gkd::clip_grad_norm(cpu, 1.0, norm_type);
      const T total_gpu = gkd::clip_grad_norm(gpu, 1.0, norm_type);
      REQUIRE_FALSE(std::isfinite(total_gpu));
      require_match(Tensor<T>::scalar(total_gpu), Tensor<T>::scalar(total_cpu), 0.0, "total norm");
      require_match(gpu[0].grad(), cpu[0].grad(), 0.0, "gradient 0");
      require_match(gpu[1].grad(), cpu[1].grad(), 0.0, "gradient 1");
    }
  }
  REQUIRE(gkd::clip_grad_norm(std::vector<Tensor<T>>{Tensor<T>::zeros({2}, gkd::cuda_device()).requires_grad()}, 1.0) ==
          T(0));
}
