// SPDX-License-Identifier: Apache-2.0
// The README's demo: trains a small U-Net to segment vessel-like curves in generated fundus-style
// images (uneven illumination, noise, thin dark curves of varying width) and prints the loss falling
// and the Dice score on held-out images.
//
//   build/examples/gkd_example_train_unet [--steps 120] [--size 64] [--batch 4] [--threads 1]
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>

#include "common/small_unet.hpp"

namespace {

/// A batch of 1-channel images with dark curved "vessels" and their exact masks (labels 0/1).
struct Batch {
  gkd::Tensor<float> images, labels;
};

Batch generate(std::int64_t n, std::int64_t size, gkd::Generator& gen) {
  auto images = gkd::Tensor<float>::empty({n, 1, size, size});
  auto labels = gkd::Tensor<float>::zeros({n, size, size});
  const double s = static_cast<double>(size);
  for (std::int64_t b = 0; b < n; ++b) {
    float* img = images.data() + b * size * size;
    float* lab = labels.data() + b * size * size;
    const int curves = 3 + static_cast<int>(gen.uniform(0, 3));
    for (int c = 0; c < curves; ++c) {  // a random walk with inertia, radius thinning along the way
      double x = gen.uniform(0, s), y = gen.uniform(0, s), angle = gen.uniform(0, 6.2832);
      double radius = gen.uniform(1.0, 2.6);
      for (int step = 0; step < 3 * size; ++step) {
        angle += gen.normal(0, 0.15);
        x += std::cos(angle);
        y += std::sin(angle);
        radius = std::max(0.7, radius * 0.997);
        for (std::int64_t py = static_cast<std::int64_t>(y - radius - 1); py <= y + radius + 1; ++py)
          for (std::int64_t px = static_cast<std::int64_t>(x - radius - 1); px <= x + radius + 1; ++px)
            if (py >= 0 && px >= 0 && py < size && px < size && std::hypot(px - x, py - y) <= radius)
              lab[py * size + px] = 1.f;
      }
    }
    const double gx = gen.uniform(-0.4, 0.4), gy = gen.uniform(-0.4, 0.4), contrast = gen.uniform(0.35, 0.7);
    for (std::int64_t i = 0; i < size * size; ++i) {
      const double u = static_cast<double>(i % size) / s - 0.5, v = static_cast<double>(i / size) / s - 0.5;
      const double background = 0.6 + gx * u + gy * v;
      img[i] = static_cast<float>(background - contrast * lab[i] + gen.normal(0, 0.08));
    }
  }
  return {images, labels};
}

double dice(const gkd::Tensor<float>& logits, const gkd::Tensor<float>& labels) {
  const auto pred = gkd::argmax(logits, 1);
  double inter = 0, total = 0;
  for (std::int64_t i = 0; i < labels.numel(); ++i) {
    inter += pred.data()[i] * labels.data()[i];
    total += pred.data()[i] + labels.data()[i];
  }
  return total > 0 ? 2 * inter / total : 1.0;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 120, threads = 1;
  std::int64_t size = 64, batch = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::atol(argv[i + 1]);
    if (a == "--steps") steps = static_cast<int>(v);
    else if (a == "--size") size = v;
    else if (a == "--batch") batch = v;
    else if (a == "--threads") threads = static_cast<int>(v);
    else {
      std::cerr << "usage: " << argv[0] << " [--steps N] [--size N] [--batch N] [--threads N]\n";
      return 2;
    }
  }
  gkd::set_num_threads(threads);
  gkd::Generator gen(2024);
  gkd::examples::SmallUNet<float> net({8, 16, 32}, 1, 2, gen);
  gkd::Adam<float> opt(net.parameters(), {.lr = 3e-3});
  const Batch held_out = generate(8, size, gen);

  std::cout << "gkd demo: U-Net (8-16-32) on generated vessel images " << size << "x" << size << ", batch " << batch
            << ", Adam 3e-3, " << threads << " thread(s)\n";
  const auto start = std::chrono::steady_clock::now();
  double first = 0, last = 0;
  for (int step = 1; step <= steps; ++step) {
    const Batch b = generate(batch, size, gen);
    opt.zero_grad();
    auto loss = gkd::cross_entropy(net(b.images, true), b.labels);
    loss.backward();
    opt.step();
    if (step == 1) first = loss.item();
    last = loss.item();
    if (step == 1 || step % 10 == 0 || step == steps) std::cout << "  step " << step << "  loss " << loss.item() << '\n';
  }
  gkd::NoGrad no_grad;
  const double d = dice(net(held_out.images, false), held_out.labels);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "loss " << first << " -> " << last << ", held-out Dice " << d << ", " << seconds << " s\n";
  return last < first ? 0 : 1;
}
