// SPDX-License-Identifier: Apache-2.0
// Float conv2d forward, input-gradient and weight-gradient time (stride 1, padding k / 2, no bias) on
// the two CPU paths of gkd/ops/conv.hpp: im2col + GEMM (+ col2im) and the implicit GEMMs that read
// padded planes in place; then PyTorch on the same shapes in the same invocation
// (benchmarks/conv_pytorch.py). Best of --reps means of --iters calls; ratios > 1: the implicit path
// (or gkd) faster.
//
//   build/benchmarks/gkd_bench_conv_paths --threads 1 [--iters 3] [--reps 4] [--no-pytorch]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "gkd/core/random.hpp"
#include "gkd/ops/conv.hpp"

namespace {

struct Shape4 {  // input [n, c, h, w], weight [o, c, k, k]
  std::int64_t n, c, h, w, o, k;
  std::string spec() const {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%ld,%ld,%ld,%ld,%ld,%ld", static_cast<long>(n), static_cast<long>(c),
                  static_cast<long>(h), static_cast<long>(w), static_cast<long>(o), static_cast<long>(k));
    return buf;
  }
};

template <class F>
double best_ms(F&& f, int iters, int reps) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    double total = 0;
    for (int i = 0; i < iters; ++i) total += f();
    best = std::min(best, total / iters);
  }
  return best;
}

double since_ms(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct Times {
  double forward = -1, input_grad = -1, weight_grad = -1;
};

/// Milliseconds of y.backward(ones) for y = conv2d(x, w) (the gradient of whichever requires it).
double backward_ms(gkd::Tensor<float> x, gkd::Tensor<float> w, const Shape4& s) {
  auto y = gkd::conv2d(x, w, {}, 1, s.k / 2);
  const auto gy = gkd::Tensor<float>::ones(y.shape());
  const auto t0 = std::chrono::steady_clock::now();
  y.backward(gy);
  const double ms = since_ms(t0);
  x.zero_grad();
  w.zero_grad();
  return ms;
}

Times time_gkd(const Shape4& s, bool implicit, int iters, int reps) {
  gkd::detail::use_implicit_gemm() = implicit;
  gkd::Generator gen(1);
  const auto x = gkd::randn<float>({s.n, s.c, s.h, s.w}, gen);
  const auto w = gkd::randn<float>({s.o, s.c, s.k, s.k}, gen);
  const auto x_grad = x.detach().requires_grad(), w_grad = w.detach().requires_grad();
  Times t;
  t.forward = best_ms(
      [&] {
        gkd::NoGrad no_grad;
        const auto t0 = std::chrono::steady_clock::now();
        (void)gkd::conv2d(x, w, {}, 1, s.k / 2);
        return since_ms(t0);
      },
      iters, reps);
  t.input_grad = best_ms([&] { return backward_ms(x_grad, w, s); }, iters, reps);
  t.weight_grad = best_ms([&] { return backward_ms(x, w_grad, s); }, iters, reps);
  gkd::detail::use_implicit_gemm() = true;
  return t;
}

std::map<std::string, Times> run_pytorch(const std::vector<Shape4>& shapes, int threads, int iters, int reps,
                                         std::string& version) {
  char head[512];
  std::snprintf(head, sizeof head, "python3 %s/conv_pytorch.py --threads %d --iters %d --reps %d --shapes",
                GKD_BENCH_DIR, threads, iters, reps);
  std::string cmd = head;
  for (const auto& s : shapes) cmd.append(" ").append(s.spec());
  cmd.append(" 2>/dev/null");
  std::map<std::string, Times> out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  char line[512] = {};
  while (std::fgets(line, sizeof line, pipe)) {
    char ver[128] = {}, spec[128] = {};
    Times t;
    if (std::sscanf(line, "pytorch %127s shape %127s forward_ms %lf input_grad_ms %lf weight_grad_ms %lf", ver, spec,
                    &t.forward, &t.input_grad, &t.weight_grad) == 5) {
      version = ver;
      out[spec] = t;
    }
  }
  pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, iters = 3, reps = 4;
  bool pytorch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--iters" && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--no-pytorch") pytorch = false;
    else {
      std::cerr << "usage: " << argv[0] << " [--threads N] [--iters N] [--reps N] [--no-pytorch]\n";
      return 2;
    }
  }
  gkd::set_num_threads(threads);
  // The `cpu` preset's narrow networks and the small U-Net (4-64 channels, down to 16 x 16), then the
  // teacher's widths.
  const std::vector<Shape4> shapes = {{4, 4, 128, 128, 8, 3},   {4, 8, 128, 128, 8, 3},    {4, 16, 128, 128, 16, 3},
                                      {4, 32, 64, 64, 32, 3},   {4, 16, 64, 64, 16, 5},    {4, 64, 32, 32, 32, 3},
                                      {4, 32, 16, 16, 32, 3},   {4, 64, 16, 16, 64, 3},    {4, 64, 128, 128, 64, 3},
                                      {4, 128, 64, 64, 128, 3}, {4, 256, 32, 32, 256, 3},  {4, 512, 16, 16, 512, 3},
                                      {4, 1024, 8, 8, 512, 3}};
  std::string version = "-";
  const auto torch = pytorch ? run_pytorch(shapes, threads, iters, reps, version) : std::map<std::string, Times>{};
  std::printf("gkd conv paths, float32, %d thread(s); PyTorch %s\n", threads, version.c_str());
  std::printf("%-22s %9s %9s %9s %6s %6s | %9s %9s %9s %6s %6s | %9s %9s %9s %6s %6s\n", "N,C,H,W,O,K", "fwd i2c",
              "fwd impl", "fwd torch", "i2c/im", "pt/im", "dx c2i", "dx impl", "dx torch", "c2i/im", "pt/im", "dw i2c",
              "dw impl", "dw torch", "i2c/im", "pt/im");
  for (const auto& s : shapes) {
    const Times unfolded = time_gkd(s, false, iters, reps), implicit = time_gkd(s, true, iters, reps);
    const auto it = torch.find(s.spec());
    const Times pt = it == torch.end() ? Times{} : it->second;
    auto ratio = [](double a, double b) { return a > 0 && b > 0 ? a / b : 0.0; };
    std::printf("%-22s %9.3f %9.3f %9.3f %6.2f %6.2f | %9.3f %9.3f %9.3f %6.2f %6.2f | %9.3f %9.3f %9.3f %6.2f %6.2f\n",
                s.spec().c_str(), unfolded.forward, implicit.forward, pt.forward, ratio(unfolded.forward, implicit.forward),
                ratio(pt.forward, implicit.forward), unfolded.input_grad, implicit.input_grad, pt.input_grad,
                ratio(unfolded.input_grad, implicit.input_grad), ratio(pt.input_grad, implicit.input_grad),
                unfolded.weight_grad, implicit.weight_grad, pt.weight_grad,
                ratio(unfolded.weight_grad, implicit.weight_grad), ratio(pt.weight_grad, implicit.weight_grad));
  }
  std::printf("(ms; i2c: im2col + GEMM, c2i: GEMM + col2im, impl: implicit GEMM where it applies; rows narrower\n"
              " than a kernel strip (32 on AVX-512, 16 on AVX2) with 1024 or more im2col rows run im2col in both gkd columns)\n");
}
