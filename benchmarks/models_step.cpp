// SPDX-License-Identifier: Apache-2.0
// Training-step time and peak memory of the GKD networks at width 1 — the student MobileNetV2UNet and
// the teacher UnetSKA2 — with batch 4, 1-channel 128x128, cross-entropy, Adam: gkd, then PyTorch on
// the same definitions in the same invocation (benchmarks/models_pytorch.py), and the ratio.
// One network per invocation, so that the peak RSS (getrusage) is that network's.
//
//   build/benchmarks/gkd_bench_models_step --net student|teacher --threads 1 [--steps 5] [--warmup 2]
//                                          [--width 1] [--no-pytorch]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "gkd/gkd.hpp"
#include "gkd/models/mobilenet_v2_unet.hpp"
#include "gkd/models/unet_ska2.hpp"
#include "gkd/optim/adam.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct TorchRun {
  double ms = -1, rss = -1;
  std::string version;
};

TorchRun run_pytorch(const std::string& net, int threads, int steps, int warmup, double width) {
  const std::string cmd = std::string("python3 ") + GKD_BENCH_DIR + "/models_pytorch.py --net " + net + " --threads " +
                          std::to_string(threads) + " --steps " + std::to_string(steps) + " --warmup " +
                          std::to_string(warmup) + " --width " + std::to_string(width) + " 2>/dev/null";
  TorchRun r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char line[512] = {};
  while (std::fgets(line, sizeof line, pipe)) {
    char ver[128] = {}, name[32] = {};
    int t = 0;
    long long params = 0;
    if (std::sscanf(line, "pytorch %127s net %31s threads %d ms_per_step %lf params %lld peak_rss_mib %lf", ver, name,
                    &t, &r.ms, &params, &r.rss) == 6)
      r.version = ver;
  }
  pclose(pipe);
  return r;
}

template <class Net>
double bench(Net& net, const std::string& name, int threads, int steps, int warmup, gkd::Generator& gen) {
  gkd::nn::train(net);
  gkd::Adam<float> opt(gkd::nn::parameters(net), {.lr = 1e-3});
  const auto x = gkd::randn<float>({4, 1, 128, 128}, gen);
  const auto y = gkd::randint<float>({4, 128, 128}, 2, gen);
  std::vector<double> times;
  float loss_value = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    auto loss = gkd::cross_entropy(net.forward(x).logits, y);
    loss.backward();
    opt.step();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(ms);
    loss_value = loss.item();
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("gkd net %s threads %d ms_per_step %.2f params %lld loss %.4f peak_rss_mib %.1f\n", name.c_str(), threads,
              median(times), static_cast<long long>(gkd::nn::parameter_count(net)), loss_value,
              usage.ru_maxrss / 1024.0);
  std::fflush(stdout);
  return median(times);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, steps = 5, warmup = 2;
  double width = 1.0;
  bool pytorch = true;
  std::string net = "student";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) warmup = std::atoi(argv[++i]);
    else if (a == "--width" && i + 1 < argc) width = std::atof(argv[++i]);
    else if (a == "--net" && i + 1 < argc) net = argv[++i];
    else if (a == "--no-pytorch") pytorch = false;
    else {
      std::cerr << "usage: " << argv[0]
                << " [--net student|teacher] [--threads N] [--steps N] [--warmup N] [--width W] [--no-pytorch]\n";
      return 2;
    }
  }
  if (net != "student" && net != "teacher") {
    std::cerr << "--net must be student or teacher\n";
    return 2;
  }
  gkd::set_num_threads(threads);
  gkd::Generator gen(0);
  double gkd_ms = 0;
  if (net == "student") {
    gkd::models::MobileNetV2UNet<float> model({.width = width}, gen);
    gkd_ms = bench(model, net, threads, steps, warmup, gen);
  } else {
    gkd::models::UnetSKA2<float> model({.width = width}, gen);
    gkd_ms = bench(model, net, threads, steps, warmup, gen);
  }
  if (!pytorch) return 0;
  const TorchRun t = run_pytorch(net, threads, steps, warmup, width);
  if (t.ms <= 0) {
    std::printf("pytorch unavailable (pip install torch) - no ratio\n");
    return 0;
  }
  std::printf("pytorch %s net %s threads %d ms_per_step %.2f peak_rss_mib %.1f\n", t.version.c_str(), net.c_str(),
              threads, t.ms, t.rss);
  std::printf("ratio gkd/pytorch %.2f (net %s, threads %d)\n", gkd_ms / t.ms, net.c_str(), threads);
}
