// SPDX-License-Identifier: Apache-2.0
// Training-step time of the small U-Net (1-channel 128x128, 2 classes, widths 16-32-64-128, batch 4,
// cross-entropy, Adam): gkd, then PyTorch on the identical network in the same invocation
// (benchmarks/unet_pytorch.py), and the ratio gkd / PyTorch.
//
//   build/benchmarks/gkd_bench_unet_step --threads 1 [--steps 10] [--warmup 3] [--no-pytorch]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "common/small_unet.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double run_pytorch(int threads, int steps, int warmup, std::string& version) {
  const std::string cmd = std::string("python3 ") + GKD_BENCH_DIR + "/unet_pytorch.py --threads " +
                          std::to_string(threads) + " --steps " + std::to_string(steps) + " --warmup " +
                          std::to_string(warmup) + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  char line[512] = {};
  double ms = -1;
  while (std::fgets(line, sizeof line, pipe)) {
    char ver[128] = {};
    int t = 0;
    if (std::sscanf(line, "pytorch %127s threads %d ms_per_step %lf", ver, &t, &ms) == 3) version = ver;
  }
  pclose(pipe);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, steps = 10, warmup = 3;
  bool pytorch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) warmup = std::atoi(argv[++i]);
    else if (a == "--no-pytorch") pytorch = false;
    else {
      std::cerr << "usage: " << argv[0] << " [--threads N] [--steps N] [--warmup N] [--no-pytorch]\n";
      return 2;
    }
  }
  gkd::set_num_threads(threads);
  gkd::Generator gen(0);
  gkd::examples::SmallUNet<float> net({16, 32, 64, 128}, 1, 2, gen);
  std::int64_t params = 0;
  for (const auto& p : net.parameters()) params += p.numel();
  gkd::Adam<float> opt(net.parameters(), {.lr = 1e-3});
  const auto x = gkd::randn<float>({4, 1, 128, 128}, gen);
  const auto y = gkd::randint<float>({4, 128, 128}, 2, gen);
  std::vector<double> times;
  float loss_value = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    auto loss = gkd::cross_entropy(net(x, true), y);
    loss.backward();
    opt.step();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(ms);
    loss_value = loss.item();
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double gkd_ms = median(times);
  std::printf("gkd threads %d ms_per_step %.2f params %lld loss %.4f peak_rss_mib %.1f\n", threads, gkd_ms,
              static_cast<long long>(params), loss_value, usage.ru_maxrss / 1024.0);
  if (pytorch) {
    std::string version;
    const double torch_ms = run_pytorch(threads, steps, warmup, version);
    if (torch_ms <= 0) {
      std::printf("pytorch unavailable (pip install torch) - no ratio\n");
      return 0;
    }
    std::printf("pytorch %s threads %d ms_per_step %.2f\n", version.c_str(), threads, torch_ms);
    std::printf("ratio gkd/pytorch %.2f (threads %d)\n", gkd_ms / torch_ms, threads);
  }
}
