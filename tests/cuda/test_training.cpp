// SPDX-License-Identifier: Apache-2.0
// Tiny training runs on the GPU and on the CPU from the same initial weights, with plain SGD written
// with tensor ops: an MLP (linear -> relu -> linear -> cross-entropy) and a small segmentation net
// (conv -> relu -> conv -> per-pixel cross-entropy). The loss curves must agree.
#include <catch2/catch.hpp>

#include <functional>

#include "compare.hpp"

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
