// SPDX-License-Identifier: Apache-2.0
// A tiny training run (linear -> relu -> linear -> cross-entropy, plain SGD written with tensor ops)
// on the GPU and on the CPU from the same initial weights: the loss curves must agree.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;

namespace {

std::vector<float> train(gkd::Device device, int steps) {
  const auto x = random<float>({32, 16}, 71).to(device);
  gkd::Generator gen(72);
  auto labels = Tensor<float>::empty({32});
  for (std::int64_t i = 0; i < 32; ++i) labels.data()[i] = static_cast<float>(static_cast<int>(gen.uniform(0, 4)) % 4);
  const auto target = labels.to(device);
  std::vector<Tensor<float>> params = {random<float>({24, 16}, 73, 0.25f), random<float>({24}, 74, 0.1f),
                                       random<float>({4, 24}, 75, 0.2f), random<float>({4}, 76, 0.1f)};
  for (auto& p : params) p = p.to(device).requires_grad();
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    const auto hidden = gkd::relu(gkd::linear(x, params[0], params[1]));
    const auto loss = gkd::cross_entropy(gkd::linear(hidden, params[2], params[3]), target);
    losses.push_back(loss.item());
    loss.backward();
    gkd::NoGrad guard;
    for (auto& p : params) p = gkd::sub(p, gkd::mul(p.grad(), 0.5f)).detach().requires_grad();
  }
  return losses;
}

}  // namespace

TEST_CASE("a short GPU training run follows the CPU loss curve", "[cuda][training]") {
  const auto cpu = train(gkd::kCPU, 8);
  const auto gpu = train(gkd::cuda_device(), 8);
  REQUIRE(cpu.back() < cpu.front());  // it learns
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    INFO("step " << i << ": cpu " << cpu[i] << " gpu " << gpu[i]);
    REQUIRE(std::abs(gpu[i] - cpu[i]) <= 1e-4f * std::max(1.f, std::abs(cpu[i])));
  }
}
