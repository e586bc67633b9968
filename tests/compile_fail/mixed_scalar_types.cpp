// SPDX-License-Identifier: Apache-2.0
// Must not compile: a float conv followed by a double batch norm in one chain.
#include "gkd/nn/nn.hpp"

int main() {
  gkd::Generator gen(0);
  gkd::nn::Sequential<gkd::nn::Conv2d<float>, gkd::nn::BatchNorm2d<double>> s(
      gkd::nn::Conv2d<float>({.in = 1, .out = 2, .kernel = 1}, gen), gkd::nn::BatchNorm2d<double>({.channels = 2}));
  return 0;
}
