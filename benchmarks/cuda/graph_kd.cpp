// SPDX-License-Identifier: Apache-2.0
// GPU graph-contrastive distillation loss (KL form, include/gkd/cuda/graph_kd.hpp), forward + backward:
// gkd (TF32, and TF32x3 up to N = 4096; the schedule Auto picks, and another schedule where it applies:
// Tiles up to N = 16384 where Auto picks Panels or SmallGraphs, Panels where it picks Tiles) against PyTorch eager and
// torch.compile on the same formula with materialised N x N matrices (benchmarks/graph_kd_pytorch.py,
// TF32 matmuls allowed) on the same GPU in the same invocation. Reports the median time of CUDA-event
// timed fwd+bwd, the extra device memory (gkd: cudaMemGetInfo delta of its workspace and outputs;
// PyTorch: max_memory_allocated above the inputs), the ratio, and the achieved TFLOP/s of gkd's
// similarity GEMMs (useful FLOPs: 2·N·cols·(2 C_s + 2 C_t + C_s), cols = columns per row of the mask).
// A plain host program (no device code of its own), so it is a .cpp linked to gkd::cuda.
//
//   build/benchmarks/gkd_bench_cuda_graph_kd [--quick] [--max-n N] [--no-pytorch] [--no-compile] [--panel-sweep]
// (--quick: N ≤ 4096; --max-n: pixel graphs up to N; --panel-sweep: instead of the table, the fused Panels
// time of the Full-mask pixel graphs up to N = 16384 for 256 … 4096 rows per panel, TF32 and BF16)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gkd/cuda/graph_kd.hpp"
#include "gkd/cuda/runtime.hpp"

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s failed: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

struct Case {
  std::int64_t n, c;
  gkd::cuda::GraphKDMask mask;
  std::int64_t group;
  const char* what;
  bool compile;  // also run torch.compile (each shape compiles once: keep the list short)
};

const char* mask_name(gkd::cuda::GraphKDMask m) {
  return m == gkd::cuda::GraphKDMask::Full ? "full" : m == gkd::cuda::GraphKDMask::Star ? "star" : "block";
}

std::string key(const Case& c) {
  std::ostringstream k;  // (ostringstream: GCC 12 -O3 raises a false -Wrestrict on chained std::string +)
  k << c.n << ',' << c.c << ',' << c.c << ',' << mask_name(c.mask) << ',' << c.group;
  return k.str();
}

struct Measure {
  double ms = -1, mib = -1;
  bool oom = false;
};

gkd::cuda::GraphKDConfig make_config(const Case& c, gkd::cuda::GraphKDPrecision precision, float tau,
                                     gkd::cuda::Schedule schedule) {
  gkd::cuda::GraphKDConfig cfg;
  cfg.n = c.n;
  cfg.student_channels = cfg.teacher_channels = c.c;
  cfg.mask = c.mask;
  cfg.group_size = c.group;
  cfg.temperature = tau;
  cfg.precision = precision;
  cfg.schedule = schedule;
  return cfg;
}

/// Forward + backward (run, then GraphKDBackward), or `fused`: run_with_gradient (Mean reduction).
Measure run_gkd(const gkd::cuda::GraphKDConfig& cfg, int reps, bool fused = false) {
  const Case c{cfg.n, cfg.student_channels, cfg.mask, cfg.group_size, "", false};
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  std::vector<float> host(std::size_t(c.n * c.c));
  float *s = nullptr, *t = nullptr;
  check(cudaMalloc(&s, host.size() * 4), "cudaMalloc");
  check(cudaMalloc(&t, host.size() * 4), "cudaMalloc");
  for (auto& v : host) v = normal(rng);
  check(cudaMemcpy(s, host.data(), host.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
  for (auto& v : host) v = normal(rng);
  check(cudaMemcpy(t, host.data(), host.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
  check(cudaDeviceSynchronize(), "sync");
  std::size_t free0 = 0, free1 = 0, total = 0;
  check(cudaMemGetInfo(&free0, &total), "cudaMemGetInfo");
  const gkd::cuda::GraphKDForward fwd(cfg);
  const gkd::cuda::GraphKDBackward bwd(cfg);
  float *rows = nullptr, *lse = nullptr, *loss = nullptr, *grad = nullptr;
  void* ws = nullptr;
  check(cudaMalloc(&rows, std::size_t(c.n) * 4), "cudaMalloc");
  check(cudaMalloc(&lse, fwd.row_lse_count() * 4), "cudaMalloc");
  check(cudaMalloc(&loss, 4), "cudaMalloc");
  check(cudaMalloc(&grad, host.size() * 4), "cudaMalloc");
  check(cudaMalloc(&ws, std::max({fwd.workspace_bytes(), bwd.workspace_bytes(), fwd.gradient_workspace_bytes()})),
        "cudaMalloc");
  check(cudaMemGetInfo(&free1, &total), "cudaMemGetInfo");
  cudaEvent_t e0, e1;
  check(cudaEventCreate(&e0), "cudaEventCreate");
  check(cudaEventCreate(&e1), "cudaEventCreate");
  auto step = [&] {
    if (fused) {
      fwd.run_with_gradient(s, t, rows, lse, loss, grad, ws, nullptr);
      return;
    }
    fwd.run(s, t, rows, lse, loss, ws, nullptr);
    bwd.run(s, t, lse, nullptr, 1.0f, grad, ws, nullptr);
  };
  step();  // warm-up
  check(cudaDeviceSynchronize(), "warm-up");
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    check(cudaEventRecord(e0), "cudaEventRecord");
    step();
    check(cudaEventRecord(e1), "cudaEventRecord");
    check(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float elapsed = 0;
    check(cudaEventElapsedTime(&elapsed, e0, e1), "cudaEventElapsedTime");
    ms.push_back(elapsed);
  }
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  for (void* p : {static_cast<void*>(s), static_cast<void*>(t), static_cast<void*>(rows), static_cast<void*>(lse),
                  static_cast<void*>(loss), static_cast<void*>(grad), ws})
    check(cudaFree(p), "cudaFree");
  return {ms[ms.size() / 2], double(free0 - free1) / (1024.0 * 1024.0), false};
}

std::map<std::string, Measure> run_pytorch(const std::vector<Case>& cases, bool compile, int reps, float tau,
                                           std::string& version) {
  std::ostringstream cmd;
  cmd << "python3 " << GKD_BENCH_DIR << "/graph_kd_pytorch.py --device cuda --reps " << reps << " --tau " << tau
      << (compile ? " --compile" : "") << " --cases";
  int count = 0;
  for (const auto& c : cases)
    if (!compile || c.compile) {
      cmd << ' ' << key(c);
      ++count;
    }
  cmd << " 2>/dev/null";
  std::map<std::string, Measure> out;
  if (count == 0) return out;
  FILE* pipe = popen(cmd.str().c_str(), "r");
  if (!pipe) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) {
    std::istringstream line(buf);
    std::string word;
    line >> word;
    if (word == "pytorch") {
      line >> version;
      continue;
    }
    if (word != "case") continue;
    std::string n, cs, ct, mask, group, tag;
    line >> n >> cs >> ct >> mask >> group >> tag;
    Measure m;
    if (tag == "ms") line >> m.ms >> tag >> m.mib;
    m.oom = tag == "oom";
    std::ostringstream k;
    k << n << ',' << cs << ',' << ct << ',' << mask << ',' << group;
    out[k.str()] = m;
  }
  pclose(pipe);
  return out;
}

std::string cell(const Measure& m, bool mib = false) {
  char buf[32];
  if (m.oom) return "OOM";
  if (m.ms < 0) return "-";
  std::snprintf(buf, sizeof buf, "%.3f", mib ? m.mib : m.ms);
  return buf;
}

/// Fused (run_with_gradient) Panels time per panel height for the Full-mask pixel graphs up to N = 16384.
int panel_sweep(const std::vector<Case>& cases, float tau) {
  using P = gkd::cuda::GraphKDPrecision;
  const std::int64_t heights[] = {256, 512, 1024, 2048, 4096};
  std::printf("graph_kd KL (tau %.2f) fused forward+gradient, Panels schedule, on %s: ms per panel height (rows)\n", tau,
              gkd::cuda::describe_device(0).c_str());
  std::printf("%6s %4s %-5s", "N", "C", "prec");
  for (auto h : heights) std::printf(" %9lld", static_cast<long long>(h));
  std::printf("\n");
  for (const auto& c : cases) {
    if (c.mask != gkd::cuda::GraphKDMask::Full || c.n < 1024 || c.n > 16384) continue;
    for (auto precision : {P::TF32, P::BF16}) {
      std::printf("%6lld %4lld %-5s", static_cast<long long>(c.n), static_cast<long long>(c.c),
                  precision == P::TF32 ? "tf32" : "bf16");
      for (auto h : heights) {
        gkd::cuda::GraphKDConfig cfg = make_config(c, precision, tau, gkd::cuda::Schedule::Panels);
        cfg.panel_rows = h;
        std::printf(" %9s", h > c.n ? "-" : cell(run_gkd(cfg, c.n >= 16384 ? 3 : 10, true)).c_str());
      }
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool pytorch = true, compile = true, quick = false, sweep = false;
  long long max_n = 1LL << 40;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-pytorch") pytorch = false;
    else if (a == "--no-compile") compile = false;
    else if (a == "--quick") quick = true;
    else if (a == "--panel-sweep") sweep = true;
    else if (a == "--max-n" && i + 1 < argc) max_n = std::atoll(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--max-n N] [--no-pytorch] [--no-compile] [--panel-sweep]\n", argv[0]);
      return 2;
    }
  }
  if (!gkd::cuda::available()) {
    std::printf("no GPU: %s\n", gkd::cuda::unavailable_reason().c_str());
    return 0;
  }
  const float tau = 0.5f;
  using K = gkd::cuda::GraphKDMask;
  std::vector<Case> cases = {{64, 512, K::Full, 0, "GKD inter B=16 K=4", true},
                             {80, 512, K::Star, 5, "GKD intra star", false},
                             {320, 512, K::Star, 5, "intra star B=64 K=4", false},
                             {4096, 512, K::BlockDiagonal, 64, "64 graphs of 64", false}};
  for (std::int64_t n : {1024, 4096, 16384, 65536})
    for (std::int64_t c : {128, 256, 512})
      if ((!quick || n <= 4096) && n <= max_n) cases.push_back({n, c, K::Full, 0, "pixel graph", n == 4096 && c == 512});
  if (sweep) return panel_sweep(cases, tau);
  std::string version = "not run", cversion = "not run";
  std::map<std::string, Measure> eager, compiled;
  if (pytorch) {
    eager = run_pytorch(cases, false, 3, tau, version);
    if (compile) compiled = run_pytorch(cases, true, 3, tau, cversion);
  }
  std::printf("graph_kd KL (tau %.2f) forward+backward on %s; PyTorch %s (TF32 matmuls allowed)\n", tau,
              gkd::cuda::describe_device(0).c_str(), version.c_str());
  std::printf("%-20s %6s %4s %-6s | %-6s %9s %9s %9s %15s %7s | %9s %9s | %9s %9s %9s | %7s %7s %7s\n", "case", "N",
              "C", "mask", "sched", "gkd ms", "fused ms", "other ms", "x3 | bf16", "TFLOP/s", "eager ms", "compile",
              "gkd MiB", "eagerMiB", "compMiB", "x eager", "xe fused", "x comp");
  using S = gkd::cuda::Schedule;
  using P = gkd::cuda::GraphKDPrecision;
  for (const auto& c : cases) {
    const int reps = c.n >= 16384 ? 3 : 10;
    const gkd::cuda::GraphKDConfig cfg = make_config(c, P::TF32, tau, S::Auto);
    const S chosen = gkd::cuda::graph_kd_schedule(cfg);
    const S other = chosen == S::Tiles ? S::Panels : S::Tiles;
    const bool other_runs = other == S::Panels ? c.mask != K::Star : c.n <= 16384 && c.c <= 512;
    const Measure g = run_gkd(cfg, reps);
    const Measure gf = run_gkd(cfg, reps, true);
    const Measure go = other_runs ? run_gkd(make_config(c, P::TF32, tau, other), reps) : Measure{};
    const Measure g3 = c.n <= 4096 ? run_gkd(make_config(c, P::TF32x3, tau, S::Auto), reps) : Measure{};
    const Measure g16 = run_gkd(make_config(c, P::BF16, tau, S::Auto), reps, true);
    const std::int64_t cols = c.mask == K::Full ? c.n - 1 : c.group - 1;
    const std::int64_t rows = c.mask == K::Star ? c.n / c.group : c.n;
    const double flops = 2.0 * double(rows) * double(cols) * double(5 * c.c);
    const Measure e = eager.count(key(c)) ? eager[key(c)] : Measure{};
    const Measure p = compiled.count(key(c)) ? compiled[key(c)] : Measure{};
    auto ratio = [&](const Measure& m, const Measure& ours) {
      char buf[32];
      if (m.ms <= 0 || ours.ms <= 0) return std::string("-");
      std::snprintf(buf, sizeof buf, "%.2f", m.ms / ours.ms);
      return std::string(buf);
    };
    std::printf("%-20s %6lld %4lld %-6s | %-6s %9.3f %9s %9s %15s %7.1f | %9s %9s | %9.1f %9s %9s | %7s %7s %7s\n",
                c.what, static_cast<long long>(c.n), static_cast<long long>(c.c), mask_name(c.mask),
                chosen == S::Tiles ? "tiles" : chosen == S::Panels ? "panels" : "small", g.ms, cell(gf).c_str(), cell(go).c_str(),
                (cell(g3) + "|" + cell(g16)).c_str(),
                flops / (g.ms * 1e9), cell(e).c_str(), cell(p).c_str(), g.mib, cell(e, true).c_str(),
                cell(p, true).c_str(), ratio(e, g).c_str(), ratio(e, gf).c_str(), ratio(p, g).c_str());
  }
  std::printf("sched: the schedule Auto picks (gkd ms: run + GraphKDBackward; fused ms: run_with_gradient, what the "
              "autodiff op runs for Mean/Sum); other ms: Tiles (Panels where Auto picks Tiles), TF32; x3 | bf16: TF32x3 (run + backward) | BF16 (fused; small graphs compute in FP32). x = PyTorch time / gkd TF32 time "
              "(> 1: gkd faster; xe fused: against the fused time); MiB: extra device memory beyond the inputs.\n");
  return 0;
}
