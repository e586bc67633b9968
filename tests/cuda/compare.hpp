// SPDX-License-Identifier: Apache-2.0
#pragma once
// GPU-vs-CPU comparison for the CUDA tests: run an op on CPU tensors and on copies on cuda:0 from the
// same random inputs, compare the outputs, backpropagate the same random output gradient on both
// devices and compare every input gradient.
#include <functional>
#include <string>
#include <vector>

#include "gkd/cuda/conv.hpp"
#include "support/check.hpp"

namespace gkd::test {

template <Real T>
using TensorFn = std::function<Tensor<T>(const std::vector<Tensor<T>>&)>;

/// Integers uniform in [0, bound), stored as T (class labels, gather indices), reproducible from `seed`.
template <Real T>
Tensor<T> random_integers(const Shape& shape, std::int64_t bound, std::uint64_t seed) {
  Generator gen(seed);
  auto t = Tensor<T>::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<T>(static_cast<std::int64_t>(gen.uniform(0, double(bound))) % bound);
  return t;
}

/// Runs convolutions through one cuDNN interface while in scope, then restores the previous one.
class UseConvApi {
 public:
  explicit UseConvApi(cuda::ConvApi api) : previous_(cuda::conv_api()) { cuda::set_conv_api(api); }
  ~UseConvApi() { cuda::set_conv_api(previous_); }
  UseConvApi(const UseConvApi&) = delete;
  UseConvApi& operator=(const UseConvApi&) = delete;
  static std::string name(cuda::ConvApi api) {
    return api == cuda::ConvApi::Graph ? "graph API" : api == cuda::ConvApi::Auto ? "auto API" : "legacy API";
  }

 private:
  cuda::ConvApi previous_;
};
inline constexpr cuda::ConvApi kConvApis[] = {cuda::ConvApi::Legacy, cuda::ConvApi::Graph, cuda::ConvApi::Auto};

/// Requires f(gpu inputs) == f(cpu inputs) within `forward_tol` and the input gradients within
/// `backward_tol` (relative, see require_close). Inputs that should get no gradient are listed in
/// `constant` by index.
template <Real T>
void require_gpu_matches_cpu(const TensorFn<T>& f, const std::vector<Tensor<T>>& inputs, double forward_tol,
                             double backward_tol, const std::string& what, std::vector<std::size_t> constant = {}) {
  std::vector<Tensor<T>> cpu, gpu;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const bool differentiable = std::find(constant.begin(), constant.end(), i) == constant.end();
    cpu.push_back(inputs[i].detach().clone().requires_grad(differentiable));
    gpu.push_back(inputs[i].cuda().requires_grad(differentiable));
  }
  const Tensor<T> y_cpu = f(cpu);
  const Tensor<T> y_gpu = f(gpu);
  INFO(what);
  REQUIRE(y_gpu.device().is_cuda());
  require_close(y_gpu, y_cpu, forward_tol, what + " forward");
  const Tensor<T> grad_out = random<T>(y_cpu.shape(), 1234);
  y_cpu.backward(grad_out);
  y_gpu.backward(grad_out.cuda());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!cpu[i].requires_grad_flag()) continue;
    REQUIRE(gpu[i].grad().defined());
    REQUIRE(gpu[i].grad().device().is_cuda());
    require_close(gpu[i].grad(), cpu[i].grad(), backward_tol, what + " gradient of input " + std::to_string(i));
  }
}

}  // namespace gkd::test
