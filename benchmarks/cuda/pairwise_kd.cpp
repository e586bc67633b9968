// SPDX-License-Identifier: Apache-2.0
// CUDA benchmark (plain C++ on the CUDA runtime: the kernels live in gkd::cuda) of the tiled SKD similarity MSE, CIRKD pixel-pair KL and DICD kernels against
// PyTorch eager and torch.compile on the same GPU, in one invocation (benchmarks/pairwise_kd_pytorch.py
// through popen, after gkd has freed its memory). Times are CUDA-event times of forward + gradient
// (gkd computes the student gradient in the forward pass, plus the backward scaling), best of
// --reps; gkd memory is the exact device allocation of the call (workspace + gradient + loss),
// PyTorch's is torch.cuda.max_memory_allocated over the inputs. TFLOP/s counts the similarity and
// gradient GEMMs the kernels run (2 N² C per N × N × C product).
//
//   build/benchmarks/gkd_bench_cuda_pairwise_kd --reps 5 [--no-pytorch] [--precise | --bf16] [--schedule auto|tiles|panels]
//       [--panel-rows R]   (panel height; default: gkd::cuda::default_panel_rows)
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gkd/cuda/cross_recon_kd.hpp"
#include "gkd/cuda/pairwise_kd.hpp"

namespace {

#define BENCH_CUDA(call)                                                                              \
  do {                                                                                                \
    const cudaError_t e_ = (call);                                                                    \
    if (e_ != cudaSuccess) {                                                                          \
      std::fprintf(stderr, "%s failed: %s (%s:%d)\n", #call, cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                                   \
    }                                                                                                 \
  } while (false)

struct Case {
  std::string kind;
  long long b, n, cs, ct;
  double tau;
  std::string spec() const {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s:%lld:%lld:%lld:%lld:%g", kind.c_str(), b, n, cs, ct, tau);
    return buf;
  }
  // GEMM FLOPs of one forward + gradient call
  double flops() const {
    const double nn = double(n) * double(n);
    if (kind == "skd") return double(b) * nn * (2.0 * (cs + ct) + 2.0 * cs);
    if (kind == "cirkd") return double(b) * double(b) * nn * (3 * 2.0 * (cs + ct) + 2 * 2.0 * cs);
    return 0;
  }
};

struct Result {
  double ms = -1, mib = -1;
  bool oom = false;
};

std::vector<float> host_random(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

Result run_gkd(const Case& c, int reps, bool precise, bool bf16, gkd::cuda::Schedule schedule,
               std::int64_t panel_rows) {
  const bool dicd = c.kind == "dicd";
  const std::size_t ns = std::size_t(c.b * c.n * c.cs), nt = dicd ? ns : std::size_t(c.b * c.n * c.ct);
  std::size_t bytes = 0;
  gkd::cuda::PairwiseShape shape{c.b, c.n, c.cs, c.ct};
  const gkd::cuda::PairwiseArgs args{.temperature = c.tau, .mean = true, .precise = precise,
                                     .schedule = schedule, .bf16 = bf16, .panel_rows = panel_rows};
  if (dicd) bytes = gkd::cuda::cross_recon_kd_workspace(c.b, c.n, c.cs);
  else bytes = c.kind == "skd" ? gkd::cuda::similarity_mse_workspace(shape, args)
                               : gkd::cuda::pixel_pair_kl_workspace(shape, args);
  float *s = nullptr, *t = nullptr, *x2 = nullptr, *g1 = nullptr, *g2 = nullptr, *loss = nullptr, *one = nullptr;
  void* ws = nullptr;
  Result r;
  if (cudaMalloc(&ws, bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    r.oom = true;
    return r;
  }
  BENCH_CUDA(cudaMalloc(&s, ns * 4));
  BENCH_CUDA(cudaMalloc(&t, nt * 4));
  BENCH_CUDA(cudaMalloc(&g1, ns * 4));
  BENCH_CUDA(cudaMalloc(&loss, 8));
  BENCH_CUDA(cudaMalloc(&one, 4));
  if (dicd) {
    BENCH_CUDA(cudaMalloc(&x2, ns * 4));
    BENCH_CUDA(cudaMalloc(&g2, ns * 4));
  }
  {
    const auto hs = host_random(ns, 1), ht = host_random(nt, 2);
    BENCH_CUDA(cudaMemcpy(s, hs.data(), ns * 4, cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaMemcpy(t, ht.data(), nt * 4, cudaMemcpyHostToDevice));
    if (dicd) BENCH_CUDA(cudaMemcpy(x2, hs.data(), ns * 4, cudaMemcpyHostToDevice));
    const float f = 1.f;
    BENCH_CUDA(cudaMemcpy(one, &f, 4, cudaMemcpyHostToDevice));
  }
  auto call = [&] {
    if (dicd) {
      gkd::cuda::cross_recon_kd_forward(t, s, x2, c.b, c.n, c.cs, {.temperature = c.tau}, loss, g1, g2, ws, bytes);
      gkd::cuda::cross_recon_kd_backward(one, g1, g2, std::int64_t(ns));
    } else {
      if (c.kind == "skd") gkd::cuda::similarity_mse_forward(s, t, shape, args, loss, g1, ws, bytes);
      else gkd::cuda::pixel_pair_kl_forward(s, t, shape, args, loss, g1, ws, bytes);
      gkd::cuda::pairwise_kd_backward(one, g1, std::int64_t(ns));
    }
  };
  call();
  BENCH_CUDA(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < reps; ++i) {
    BENCH_CUDA(cudaEventRecord(start));
    call();
    BENCH_CUDA(cudaEventRecord(stop));
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    if (r.ms < 0 || ms < r.ms) r.ms = ms;
  }
  r.mib = double(bytes + ns * 4 * (dicd ? 2 : 1) + 8) / (1 << 20);
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  for (void* p : {static_cast<void*>(s), static_cast<void*>(t), static_cast<void*>(x2), static_cast<void*>(g1),
                  static_cast<void*>(g2), static_cast<void*>(loss), static_cast<void*>(one), ws})
    if (p) BENCH_CUDA(cudaFree(p));
  return r;
}

std::map<std::string, Result> run_pytorch(const std::vector<Case>& cases, const std::vector<Case>& compiled, int reps,
                                          std::string& version) {
  std::string specs, cspecs;
  for (const auto& c : cases) {
    if (!specs.empty()) specs += ',';
    specs += c.spec();
  }
  for (const auto& c : compiled) {
    if (!cspecs.empty()) cspecs += ',';
    cspecs += c.spec();
  }
  const std::string cmd = std::string("python3 ") + GKD_BENCH_DIR + "/pairwise_kd_pytorch.py --device cuda --reps " +
                          std::to_string(reps) + " --cases " + specs + " --compile-cases " + cspecs;
  std::map<std::string, Result> out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    char spec[128], mode[32], ver[128];
    double ms = 0, peak = 0;
    int threads = 0;
    if (std::sscanf(line, "pytorch %127s threads %d", ver, &threads) == 2) version = ver;
    if (std::sscanf(line, "case %127s mode %31s ms %lf peak_mib %lf", spec, mode, &ms, &peak) == 4)
      out[std::string(mode) + " " + spec] = {ms, peak, false};
    else if (std::sscanf(line, "case %127s mode %31s OOM", spec, mode) == 2)
      out[std::string(mode) + " " + spec] = {-1, -1, true};
  }
  pclose(pipe);
  return out;
}

std::string cell(const std::map<std::string, Result>& m, const std::string& key, bool mem) {
  const auto it = m.find(key);
  if (it == m.end()) return "-";
  if (it->second.oom) return "OOM";
  char buf[32];
  std::snprintf(buf, sizeof buf, mem ? "%.1f" : "%.3f", mem ? it->second.mib : it->second.ms);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  bool pytorch = true, precise = false, bf16 = false;
  auto schedule = gkd::cuda::Schedule::Auto;
  std::int64_t panel_rows = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--no-pytorch") pytorch = false;
    else if (a == "--precise") precise = true;
    else if (a == "--bf16") bf16 = true;
    else if (a == "--panel-rows" && i + 1 < argc) panel_rows = std::atoll(argv[++i]);
    else if (a == "--schedule" && i + 1 < argc) {
      const std::string v = argv[++i];
      schedule = v == "tiles" ? gkd::cuda::Schedule::Tiles : v == "panels" ? gkd::cuda::Schedule::Panels : gkd::cuda::Schedule::Auto;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--reps N] [--no-pytorch] [--precise | --bf16] [--schedule auto|tiles|panels] "
                   "[--panel-rows R]\n",
                   argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  const std::vector<Case> cases = {
      {"skd", 16, 64, 512, 512, 1.0},        {"skd", 1, 1024, 256, 256, 1.0},    {"skd", 1, 4096, 128, 128, 1.0},
      {"skd", 1, 4096, 256, 256, 1.0},       {"skd", 1, 4096, 512, 512, 1.0},    {"skd", 1, 16384, 256, 256, 1.0},
      {"skd", 1, 65536, 128, 128, 1.0},      {"cirkd", 1, 4096, 512, 512, 0.1},  {"cirkd", 2, 8192, 128, 256, 0.1},
      {"cirkd", 1, 16384, 128, 128, 0.1},    {"cirkd", 1, 65536, 128, 128, 0.1}, {"dicd", 16, 2, 128 * 128, 0, 4.0}};
  const std::vector<Case> compiled = {{"skd", 1, 4096, 512, 512, 1.0}, {"dicd", 16, 2, 128 * 128, 0, 4.0}};
  const char* schedule_name = schedule == gkd::cuda::Schedule::Tiles    ? "tiles"
                              : schedule == gkd::cuda::Schedule::Panels ? "panels"
                                                                        : "auto (panels from N = 2048)";
  std::printf("GPU: %s; gkd %s similarities, schedule %s, panel rows %s; forward + student gradient, best of %d\n",
              prop.name, precise ? "fp32-level" : bf16 ? "bf16" : "TF32", schedule_name,
              panel_rows > 0 ? std::to_string(panel_rows).c_str() : "default", reps);
  std::map<std::string, Result> gkd_results;
  for (const auto& c : cases) {
    gkd_results[c.spec()] =
        run_gkd(c, c.n >= 65536 ? 2 : reps, precise, bf16 && c.kind != "dicd", schedule, panel_rows);
    const Result& g = gkd_results[c.spec()];
    std::printf("gkd %-28s %10.3f ms %9.1f MiB %8.1f TFLOP/s\n", c.spec().c_str(), g.ms, g.mib,
                c.flops() > 0 && g.ms > 0 ? c.flops() / (g.ms * 1e9) : 0.0);
    std::fflush(stdout);
  }
  std::string version = "-";
  std::map<std::string, Result> torch;
  if (pytorch) torch = run_pytorch(cases, compiled, reps, version);
  std::printf("\n%-28s %10s %10s %10s %9s %10s %10s %8s %8s\n", "case kind:B:N:Cs:Ct:tau", "gkd ms", "eager ms", "compile ms",
              "gkd MiB", "eager MiB", "compile MiB", "x eager", "x compile");
  for (const auto& c : cases) {
    const Result& g = gkd_results[c.spec()];
    const std::string e = "eager " + c.spec(), k = "compile " + c.spec();
    auto ratio = [&](const std::string& key) {
      const auto it = torch.find(key);
      if (it == torch.end() || it->second.oom || g.ms <= 0) return std::string("-");
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2fx", it->second.ms / g.ms);
      return std::string(buf);
    };
    std::printf("%-28s %10.3f %10s %10s %9.1f %10s %10s %8s %8s\n", c.spec().c_str(), g.ms, cell(torch, e, false).c_str(),
                cell(torch, k, false).c_str(), g.mib, cell(torch, e, true).c_str(), cell(torch, k, true).c_str(),
                ratio(e).c_str(), ratio(k).c_str());
  }
  std::printf("PyTorch %s on the same GPU; OOM: PyTorch ran out of memory\n", version.c_str());
  return 0;
}
