// SPDX-License-Identifier: Apache-2.0
// CUDA-event timings of a few gkd ops on the GPU next to PyTorch on the same GPU in the same
// invocation (benchmarks/cuda/ops_pytorch.py run through python3), with the ratio gkd/PyTorch
// (below 1 = gkd faster). Cases: elementwise add/relu and sum over 64 MiB, softmax over the class
// dim of a [16, 19, 128, 128] map, fused cross-entropy forward+backward on it, a 4096^3 GEMM and a
// 3x3 64->64 convolution on [16, 64, 128, 128] (forward + both backwards, plus the sum's backward),
// each with TF32 off and on. The gradients accumulate into the leaves' .grad in both programs.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "gkd/cuda/memory.hpp"
#include "gkd/cuda/runtime.hpp"
#include "gkd/gkd.hpp"

namespace {

double time_ms(const std::function<void()>& fn, int reps) {
  for (int i = 0; i < 3; ++i) fn();
  gkd::cuda::synchronize();
  gkd::cuda::Event start, stop;
  start.record();
  for (int i = 0; i < reps; ++i) fn();
  stop.record();
  return stop.elapsed_ms(start) / reps;
}

std::map<std::string, double> run_pytorch() {
  std::map<std::string, double> out;
  // GKD_BENCH_DIR in the environment overrides the compiled-in source path (a relocated checkout).
  const char* env_dir = std::getenv("GKD_BENCH_DIR");
  const std::string command =
      std::string("python3 ") + (env_dir ? env_dir : GKD_BENCH_DIR) + "/cuda/ops_pytorch.py";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return out;
  char line[512];
  while (std::fgets(line, sizeof line, pipe.get())) {
    std::istringstream in(line);
    std::string name;
    double ms = 0;
    if (in >> name >> ms) out[name] = ms;
  }
  return out;
}

}  // namespace

int main() {
  if (!gkd::cuda::available()) {
    std::cout << "no GPU: " << gkd::cuda::unavailable_reason() << "\n";
    return 0;
  }
  std::cout << "GPU: " << gkd::cuda::describe_device(0) << "\n";
  using F = gkd::Tensor<float>;
  std::map<std::string, double> ours;
  {
    gkd::NoGrad guard;
    const std::int64_t n = 16 * 1024 * 1024;
    gkd::Generator gen(1);
    const F a = gkd::randn<float>({n}, gen).cuda(), b = gkd::randn<float>({n}, gen).cuda();
    ours["add_64MiB"] = time_ms([&] { (void)gkd::add(a, b); }, 20);
    ours["relu_64MiB"] = time_ms([&] { (void)gkd::relu(a); }, 20);
    ours["sum_64MiB"] = time_ms([&] { (void)gkd::sum(a); }, 20);
    const F logits = gkd::randn<float>({16, 19, 128, 128}, gen).cuda();
    ours["softmax_16x19x128x128"] = time_ms([&] { (void)gkd::softmax(logits, 1); }, 20);
    const F m1 = gkd::randn<float>({4096, 4096}, gen).cuda(), m2 = gkd::randn<float>({4096, 4096}, gen).cuda();
    gkd::cuda::set_allow_tf32(false);
    ours["matmul_4096_fp32"] = time_ms([&] { (void)gkd::matmul(m1, m2); }, 10);
    gkd::cuda::set_allow_tf32(true);
    ours["matmul_4096_tf32"] = time_ms([&] { (void)gkd::matmul(m1, m2); }, 10);
    gkd::cuda::set_allow_tf32(false);
  }
  {
    gkd::Generator gen(2);
    const F logits = gkd::randn<float>({16, 19, 128, 128}, gen).cuda().requires_grad();
    F labels = F::empty({16, 128, 128});
    for (std::int64_t i = 0; i < labels.numel(); ++i) labels.data()[i] = static_cast<float>(static_cast<int>(gen.uniform(0, 19)) % 19);
    const F target = labels.cuda();
    ours["cross_entropy_fwd_bwd"] = time_ms([&] { gkd::cross_entropy(logits, target).backward(); }, 20);
  }
  {
    // 3x3 convolution 64 -> 64 channels, padding 1, on [16, 64, 128, 128]: forward + both backwards
    gkd::Generator gen(3);
    const F x = gkd::randn<float>({16, 64, 128, 128}, gen).cuda().requires_grad();
    const F w = gkd::mul(gkd::randn<float>({64, 64, 3, 3}, gen), 0.05f).cuda().requires_grad();
    const F b = F::zeros({64}, gkd::cuda_device()).requires_grad();
    auto step = [&] { gkd::sum(gkd::conv2d(x, w, b, 1, 1)).backward(); };
    gkd::cuda::set_allow_tf32(false);
    ours["conv3x3_64_fwd_bwd_fp32"] = time_ms(step, 5);
    gkd::cuda::set_allow_tf32(true);
    ours["conv3x3_64_fwd_bwd_tf32"] = time_ms(step, 5);
    gkd::cuda::set_allow_tf32(false);
  }
  const auto torch = run_pytorch();
  if (torch.empty()) std::cout << "(PyTorch counterpart gave no figures: is torch with CUDA installed?)\n";
  const auto stats = gkd::cuda::memory_stats();
  std::printf("%-26s %12s %12s %10s\n", "case", "gkd ms", "torch ms", "gkd/torch");
  for (const auto& [name, ms] : ours) {
    const auto it = torch.find(name);
    if (it == torch.end()) {
      std::printf("%-26s %12.4f %12s %10s\n", name.c_str(), ms, "-", "-");
    } else {
      std::printf("%-26s %12.4f %12.4f %10.2f\n", name.c_str(), ms, it->second, ms / it->second);
    }
  }
  std::printf("caching allocator: %zu MiB peak in use, %zu MiB reserved, %zu cudaMalloc calls\n",
              stats.peak_in_use >> 20, stats.reserved >> 20, stats.device_allocations);
  return 0;
}
