// SPDX-License-Identifier: Apache-2.0
// Training-step time and peak memory of the GKD networks at width 1 — the student MobileNetV2UNet and
// the teacher UnetSKA2 — on 1-channel 128x128 images, cross-entropy, Adam: gkd, then PyTorch on the same
// definitions in the same invocation (benchmarks/models_pytorch.py), and the ratio. One network per
// invocation, so that the peak memory is that network's: peak RSS (getrusage) on the CPU, the caching
// allocators' peak on a GPU (`--device cuda`, built with gkd::cuda; steps timed with CUDA events). On a
// GPU `step_peak_mib` is the peak of the timed steps alone: the warm-up steps also hold one-time
// algorithm searches' workspaces (gkd benchmarks every convolution's algorithms; PyTorch's default
// cuDNN heuristics need none).
//
//   build/benchmarks/gkd_bench_models_step --net student|teacher --threads 1 [--steps 5] [--warmup 2]
//                                          [--width 1] [--batch 4] [--device cpu|cuda] [--tf32] [--no-pytorch]
//                                          [--conv-api legacy|graph|auto]   (cuDNN interface, gkd/cuda/conv.hpp)
//                                          [--autocast]   (forward and loss under bf16 autocast on both sides)
// Float32 on both sides is strict FP32 unless --tf32 lets both use TF32 tensor cores for convolutions and
// GEMMs (gkd::cuda::set_allow_tf32; PyTorch's cudnn.allow_tf32 and matmul.allow_tf32). PyTorch's own default
// allows TF32 in cuDNN convolutions, so without the explicit setting the two sides would differ in precision.
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
#if defined(GKD_HAS_CUDA)
#include "gkd/cuda/conv.hpp"
#include "gkd/cuda/linalg.hpp"
#include "gkd/cuda/memory.hpp"
#endif

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct TorchRun {
  double ms = -1, rss = -1, step_peak = -1;
  std::string version;
};

struct Settings {
  std::string net = "student";
  int threads = 1, steps = 5, warmup = 2, batch = 4;
  double width = 1.0;
  gkd::Device device = gkd::kCPU;
  bool tf32 = false;
  std::string conv_api = "auto";
  bool autocast = false;
};

TorchRun run_pytorch(const Settings& s) {
  const std::string cmd = std::string("python3 ") + GKD_BENCH_DIR + "/models_pytorch.py --net " + s.net + " --threads " +
                          std::to_string(s.threads) + " --steps " + std::to_string(s.steps) + " --warmup " +
                          std::to_string(s.warmup) + " --width " + std::to_string(s.width) + " --batch " +
                          std::to_string(s.batch) + " --device " + (s.device.is_cuda() ? "cuda" : "cpu") + (s.tf32 ? " --tf32" : "") + (s.autocast ? " --autocast" : "") +
                          " 2>/dev/null";
  TorchRun r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char line[512] = {};
  while (std::fgets(line, sizeof line, pipe)) {
    char ver[128] = {}, name[32] = {};
    int t = 0;
    long long params = 0;
    const int fields = std::sscanf(line, "pytorch %127s net %31s threads %d ms_per_step %lf params %lld peak_mib %lf "
                                   "step_peak_mib %lf", ver, name, &t, &r.ms, &params, &r.rss, &r.step_peak);
    if (fields >= 6) r.version = ver;
  }
  pclose(pipe);
  return r;
}

/// Milliseconds of `f()`: CUDA events around it on a GPU (the step ends when its last kernel does),
/// the steady clock on the host.
template <class F>
double time_ms([[maybe_unused]] gkd::Device device, F&& f) {
#if defined(GKD_HAS_CUDA)
  if (device.is_cuda()) {
    gkd::cuda::Event start, stop;
    start.record();
    f();
    stop.record();
    return stop.elapsed_ms(start);
  }
#endif
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// Peak memory in MiB: the caching allocator's peak on a GPU, the peak RSS on the host.
double peak_mib([[maybe_unused]] gkd::Device device) {
#if defined(GKD_HAS_CUDA)
  if (device.is_cuda()) return double(gkd::cuda::memory_stats().peak_in_use) / (1024.0 * 1024.0);
#endif
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

template <class Net>
double bench(Net& net, const Settings& s, gkd::Generator& gen) {
  gkd::nn::to(net, s.device);
  gkd::nn::train(net);
  gkd::Adam<float> opt(gkd::nn::parameters(net), {.lr = 1e-3});
  const auto x = gkd::randn<float>({s.batch, 1, 128, 128}, gen).to(s.device);
  const auto y = gkd::randint<float>({s.batch, 128, 128}, 2, gen).to(s.device);
  std::vector<double> times;
  gkd::Tensor<float> loss;
  double warmup_peak = 0;
  for (int i = 0; i < s.warmup + s.steps; ++i) {
#if defined(GKD_HAS_CUDA)
    if (i == s.warmup && s.device.is_cuda()) {  // count the timed steps' convolutions and memory
      gkd::cuda::reset_conv_counters();
      warmup_peak = peak_mib(s.device);
      gkd::cuda::reset_peak();
    }
#endif
    const double ms = time_ms(s.device, [&] {
      opt.zero_grad();
      {
        gkd::Autocast scope(s.autocast ? gkd::Precision::bf16 : gkd::Precision::f32);
        loss = gkd::cross_entropy(net.forward(x).logits, y);
      }
      loss.backward();
      opt.step();
    });
    if (i >= s.warmup) times.push_back(ms);
  }
  const double step_peak = peak_mib(s.device);
  std::printf("gkd net %s device %s batch %d threads %d%s%s%s ms_per_step %.2f params %lld loss %.4f peak_mib %.1f",
              s.net.c_str(), s.device.str().c_str(), s.batch, s.threads, s.tf32 ? " tf32" : "",
              s.autocast ? " autocast bf16" : "",
              s.device.is_cuda() ? (" conv_api " + s.conv_api).c_str() : "", median(times),
              static_cast<long long>(gkd::nn::parameter_count(net)), loss.item(), std::max(warmup_peak, step_peak));
  if (s.device.is_cuda()) std::printf(" step_peak_mib %.1f", step_peak);
  std::printf("\n");
#if defined(GKD_HAS_CUDA)
  if (s.device.is_cuda()) {
    const auto c = gkd::cuda::conv_counters();
    std::printf("gkd conv directions per step: graph API %.0f, legacy API %.0f (of which fell back from graph %.0f), "
                "16-bit %.0f, 16-bit computed in float32 %.0f\n",
                double(c.graph_runs) / s.steps, double(c.legacy_runs) / s.steps, double(c.graph_to_legacy) / s.steps,
                double(c.runs_16bit) / s.steps, double(c.no_16bit_algorithm) / s.steps);
  }
#endif
  std::fflush(stdout);
  return median(times);
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  bool pytorch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) s.threads = std::atoi(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) s.steps = std::atoi(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) s.warmup = std::atoi(argv[++i]);
    else if (a == "--width" && i + 1 < argc) s.width = std::atof(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) s.batch = std::atoi(argv[++i]);
    else if (a == "--device" && i + 1 < argc) s.device = std::string(argv[++i]) == "cuda" ? gkd::cuda_device() : gkd::kCPU;
    else if (a == "--net" && i + 1 < argc) s.net = argv[++i];
    else if (a == "--tf32") s.tf32 = true;
    else if (a == "--conv-api" && i + 1 < argc) s.conv_api = argv[++i];
    else if (a == "--autocast") s.autocast = true;
    else if (a == "--no-pytorch") pytorch = false;
    else {
      std::cerr << "usage: " << argv[0]
                << " [--net student|teacher] [--threads N] [--steps N] [--warmup N] [--width W] [--batch N]"
                   " [--device cpu|cuda] [--tf32] [--no-pytorch] [--conv-api legacy|graph|auto] [--autocast]\n";
      return 2;
    }
  }
  if (s.conv_api != "legacy" && s.conv_api != "graph" && s.conv_api != "auto") {
    std::cerr << "--conv-api must be legacy, graph or auto\n";
    return 2;
  }
  if (s.net != "student" && s.net != "teacher") {
    std::cerr << "--net must be student or teacher\n";
    return 2;
  }
  gkd::set_num_threads(s.threads);
#if defined(GKD_HAS_CUDA)
  gkd::cuda::set_allow_tf32(s.tf32);
  gkd::cuda::set_conv_api(s.conv_api == "graph"  ? gkd::cuda::ConvApi::Graph
                          : s.conv_api == "auto" ? gkd::cuda::ConvApi::Auto
                                                 : gkd::cuda::ConvApi::Legacy);
#else
  if (s.tf32 && s.device.is_cuda()) std::cerr << "--tf32: this build has no CUDA backend\n";
#endif
  gkd::Generator gen(0);
  double gkd_ms = 0;
  try {
    if (s.net == "student") {
      gkd::models::MobileNetV2UNet<float> model({.width = s.width}, gen);
      gkd_ms = bench(model, s, gen);
    } else {
      gkd::models::UnetSKA2<float> model({.width = s.width}, gen);
      gkd_ms = bench(model, s, gen);
    }
  } catch (const gkd::Error& e) {
    std::cerr << "gkd: " << e.what() << "\n";
    return 1;
  }
  if (!pytorch) return 0;
  const TorchRun t = run_pytorch(s);
  if (t.ms <= 0) {
    std::printf("pytorch unavailable (pip install torch) - no ratio\n");
    return 0;
  }
  std::printf("pytorch %s net %s device %s batch %d threads %d ms_per_step %.2f peak_mib %.1f", t.version.c_str(),
              s.net.c_str(), s.device.str().c_str(), s.batch, s.threads, t.ms, t.rss);
  if (t.step_peak >= 0) std::printf(" step_peak_mib %.1f", t.step_peak);
  std::printf("\n");
  std::printf("ratio gkd/pytorch %.2f (net %s, device %s, batch %d, threads %d)\n", gkd_ms / t.ms, s.net.c_str(),
              s.device.str().c_str(), s.batch, s.threads);
}
