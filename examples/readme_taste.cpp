// SPDX-License-Identifier: Apache-2.0
// The README's "A taste" snippet, kept compiling and running as a test.
#include <iostream>
#include <gkd/gkd.hpp>
#include <gkd/optim/adam.hpp>

int main() {
  gkd::Generator gen(0);
  auto x = gkd::randn<float>({8, 1, 32, 32}, gen);           // a batch of images
  auto labels = gkd::randint<float>({8, 32, 32}, 2, gen);     // per-pixel classes
  auto w1 = gkd::randn<float>({16, 1, 3, 3}, gen, 0.f, 0.3f).requires_grad();
  auto w2 = gkd::randn<float>({2, 16, 1, 1}, gen, 0.f, 0.3f).requires_grad();
  auto b2 = gkd::Tensor<float>::zeros({2}).requires_grad();
  gkd::Adam<float> opt({w1, w2, b2}, {.lr = 1e-2});

  for (int step = 0; step < 20; ++step) {
    auto h = gkd::relu(gkd::conv2d(x, w1, {}, /*stride=*/1, /*padding=*/1));
    auto logits = gkd::conv2d(h, w2, b2);                     // [8, 2, 32, 32]
    auto loss = gkd::cross_entropy(logits, labels);
    opt.zero_grad();
    loss.backward();                                          // gradients land in w1.grad(), ...
    opt.step();
    if (step % 5 == 0) std::cout << "step " << step << " loss " << loss.item() << '\n';
  }
}
