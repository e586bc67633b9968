// SPDX-License-Identifier: Apache-2.0
// Must not compile: a layer without visit() cannot join a Sequential (its tensors could not be named).
#include "gkd/nn/nn.hpp"

struct Scale {
  using value_type = float;
  gkd::Tensor<float> forward(const gkd::Tensor<float>& x) { return gkd::mul(x, 2.f); }
};

int main() {
  gkd::Generator gen(0);
  gkd::nn::Sequential<gkd::nn::Conv2d<float>, Scale> s(gkd::nn::Conv2d<float>({.in = 1, .out = 1, .kernel = 1}, gen), Scale{});
  return static_cast<int>(gkd::nn::parameter_count(s));
}
