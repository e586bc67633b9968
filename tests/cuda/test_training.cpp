// SPDX-License-Identifier: Apache-2.0
// Tiny training runs on the GPU and on the CPU from the same initial weights, with plain SGD written
// with tensor ops: an MLP (linear -> relu -> linear -> cross-entropy) and a small segmentation net
// (conv -> relu -> conv -> per-pixel cross-entropy); and the student network MobileNetV2UNet with Adam,
// moved to the GPU with nn::to. The loss curves must agree.
#include <catch2/catch.hpp>

#include <functional>

#include "compare.hpp"
#include "gkd/models/mobilenet_v2_unet.hpp"
#include "gkd/nn/module.hpp"
#include "gkd/optim/adam.hpp"
#include "gkd/optim/sgd.hpp"

using gkd::Tensor;
using gkd::test::random;

namespace {

using Model = std::function<Tensor<float>(const Tensor<float>& x, const std::vector<Tensor<float>>& params)>;

Tensor<float> labels(const gkd::Shape& shape, int classes, std::uint64_t seed) {
  gkd::Generator gen(seed);
  auto t = Tensor<float>::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<float>(static_cast<int>(gen.uniform(0, classes)) % classes);
  return t;
}

std::vector<float> train(gkd::Device device, const Model& model, const Tensor<float>& x0, const Tensor<float>& t0,
                         std::vector<Tensor<float>> params, float lr, int steps) {
  const auto x = x0.to(device), target = t0.to(device);
  for (auto& p : params) p = p.to(device).requires_grad();
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    const auto loss = gkd::cross_entropy(model(x, params), target);
    losses.push_back(loss.item());
    loss.backward();
    gkd::NoGrad guard;
    for (auto& p : params) p = gkd::sub(p, gkd::mul(p.grad(), lr)).detach().requires_grad();
  }
  return losses;
}

void require_same_curve(const std::vector<float>& cpu, const std::vector<float>& gpu, float tol) {
  REQUIRE(cpu.back() < cpu.front());  // it learns
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    INFO("step " << i << ": cpu " << cpu[i] << " gpu " << gpu[i]);
    REQUIRE(std::abs(gpu[i] - cpu[i]) <= tol * std::max(1.f, std::abs(cpu[i])));
  }
}

}  // namespace

TEST_CASE("a short GPU training run of an MLP follows the CPU loss curve", "[cuda][training]") {
  const Model mlp = [](const auto& x, const auto& p) {
    return gkd::linear(gkd::relu(gkd::linear(x, p[0], p[1])), p[2], p[3]);
  };
  const auto x = random<float>({32, 16}, 71);
  const auto t = labels({32}, 4, 72);
  const std::vector<Tensor<float>> init = {random<float>({24, 16}, 73, 0.25f), random<float>({24}, 74, 0.1f),
                                           random<float>({4, 24}, 75, 0.2f), random<float>({4}, 76, 0.1f)};
  require_same_curve(train(gkd::kCPU, mlp, x, t, init, 0.5f, 8), train(gkd::cuda_device(), mlp, x, t, init, 0.5f, 8),
                     1e-4f);
}

TEST_CASE("a short GPU training run of a conv net follows the CPU loss curve", "[cuda][training]") {
  const Model net = [](const auto& x, const auto& p) {
    return gkd::conv2d(gkd::relu(gkd::conv2d(x, p[0], p[1], 1, 1)), p[2], p[3], 1, 1);
  };
  const auto x = random<float>({2, 3, 16, 16}, 91);
  const auto t = labels({2, 16, 16}, 3, 92);
  const std::vector<Tensor<float>> init = {random<float>({8, 3, 3, 3}, 93, 0.3f), random<float>({8}, 94, 0.1f),
                                           random<float>({3, 8, 3, 3}, 95, 0.2f), random<float>({3}, 96, 0.1f)};
  require_same_curve(train(gkd::kCPU, net, x, t, init, 0.2f, 6), train(gkd::cuda_device(), net, x, t, init, 0.2f, 6),
                     1e-4f);
}

namespace {

/// Losses of `steps` steps of `Optim` (Adam with lr 1e-3, or SGD with lr 1e-2) on the student
/// MobileNetV2UNet (width 0.25, batch 2, 1x32x32, two classes, batch norm in training mode) on `device`,
/// from the weights that seed 5 gives.
template <gkd::Real T, template <class> class Optim>
std::vector<double> train_student(gkd::Device device, int steps) {
  gkd::Generator gen(5);
  gkd::models::MobileNetV2UNet<T> net({.width = 0.25}, gen);
  gkd::nn::to(net, device);
  gkd::nn::train(net);
  Optim<T> opt(gkd::nn::parameters(net), {.lr = std::is_same_v<Optim<T>, gkd::Adam<T>> ? 1e-3 : 1e-2});
  const auto x = random<T>({2, 1, 32, 32}, 501).to(device);
  auto t = Tensor<T>::empty({2, 32, 32});
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = T((i / 7 + i / 32) % 2);
  const auto target = t.to(device);
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    const auto loss = gkd::cross_entropy(net.forward(x).logits, target);
    losses.push_back(double(loss.item()));
    loss.backward();
    opt.step();
  }
  for (const auto& p : gkd::nn::state_dict(net)) REQUIRE(p.tensor.device() == device);
  return losses;
}

}  // namespace

TEST_CASE("a short GPU training run of the student network follows the CPU loss curve", "[cuda][training]") {
  // float64 with Adam: cuDNN and the CPU differ only by summation order, so the curves agree to ~1e-12.
  const auto cpu64 = train_student<double, gkd::Adam>(gkd::kCPU, 6);
  const auto gpu64 = train_student<double, gkd::Adam>(gkd::cuda_device(), 6);
  REQUIRE(cpu64.back() < cpu64.front());
  for (std::size_t i = 0; i < cpu64.size(); ++i) {
    INFO("step " << i << ": cpu " << cpu64[i] << " gpu " << gpu64[i]);
    REQUIRE(std::abs(gpu64[i] - cpu64[i]) <= 1e-9 * std::abs(cpu64[i]));
  }
}

TEST_CASE("a short float32 GPU training run of the student network follows the CPU loss curve", "[cuda][training]") {
  // float32 with SGD. Not Adam: the gradients of the transposed convs' biases are 0 in exact arithmetic
  // (batch norm removes any per-channel constant after the next 1x1 conv), and Adam's normalised steps turn
  // their float32 rounding noise into steps of up to lr, of random sign, so any two float32 Adam runs
  // drift apart chaotically (measured on an H100: 1.6e-2 apart after one step, GPU against CPU). SGD
  // keeps noise at noise size: the GPU float32 curve must stay within twice the CPU float32 curve's own
  // distance from the float64 one, step by step (plus 1e-5 relative).
  const auto cpu64 = train_student<double, gkd::SGD>(gkd::kCPU, 6);
  const auto cpu32 = train_student<float, gkd::SGD>(gkd::kCPU, 6);
  const auto gpu32 = train_student<float, gkd::SGD>(gkd::cuda_device(), 6);
  REQUIRE(cpu64.back() < cpu64.front());
  for (std::size_t i = 0; i < cpu64.size(); ++i) {
    INFO("step " << i << ": cpu " << cpu64[i] << " (float64), cpu " << cpu32[i] << " gpu " << gpu32[i] << " (float32)");
    REQUIRE(std::abs(gpu32[i] - cpu32[i]) <= 2 * std::abs(cpu32[i] - cpu64[i]) + 1e-5 * std::abs(cpu32[i]));
  }
}
