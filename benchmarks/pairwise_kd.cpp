// SPDX-License-Identifier: Apache-2.0
// CPU benchmark of the tiled pair-wise and cross-reconstruction distillation losses against PyTorch
// eager on the same formulas (benchmarks/pairwise_kd_pytorch.py, run through popen with the same
// thread count): forward + backward w.r.t. the student, best of --reps, and the growth of peak
// resident memory during the step (VmHWM reset through /proc/self/clear_refs, in both processes).
// --compile adds torch.compile. --large adds the pixel graphs N = 16384 (C = 128, 256, 512) and
// N = 65536 (C = 128): minutes per case, so those run once after one warm-up; a case that does not fit
// this machine's memory shows PyTorch as OOM (its script caps its address space).
//
//   build/benchmarks/gkd_bench_pairwise_kd --threads 2 [--reps 3] [--no-pytorch] [--quick] [--only skd|cirkd|dicd]
//                                         [--compile] [--large]
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gkd/gkd.hpp"
#include "gkd/losses/cross_recon_kd.hpp"
#include "gkd/losses/pairwise_kd.hpp"
#include "table_cell.hpp"

namespace {

struct Case {
  std::string kind;
  std::int64_t b, n, cs, ct;
  double tau;
  bool large = false;  ///< run once after one warm-up
  std::string spec() const {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s:%lld:%lld:%lld:%lld:%g", kind.c_str(), (long long)b, (long long)n, (long long)cs,
                  (long long)ct, tau);
    return buf;
  }
};

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::string(field).size());
  return 0;
}

struct Result {
  double ms = -1, peak_mib = -1;
  bool oom = false;
};

Result run_gkd(const Case& c, int reps) {
  gkd::Generator gen(0);
  auto step = [&](auto& inputs) {
    for (auto& x : inputs.grads) x.zero_grad();
    gkd::Tensor<float> loss = inputs.fn();
    loss.backward();
  };
  struct Inputs {
    std::vector<gkd::Tensor<float>> grads;
    std::function<gkd::Tensor<float>()> fn;
  } in;
  if (c.kind == "dicd") {
    auto t = gkd::randn<float>({c.b, c.n, c.cs}, gen), x1 = gkd::randn<float>({c.b, c.n, c.cs}, gen).requires_grad(),
         x2 = gkd::randn<float>({c.b, c.n, c.cs}, gen).requires_grad();
    in.grads = {x1, x2};
    in.fn = [t, x1, x2, tau = c.tau] { return gkd::cross_recon_kd(t, x1, x2, {.temperature = tau}); };
  } else {
    auto s = gkd::randn<float>({c.b, c.n, c.cs}, gen).requires_grad(), t = gkd::randn<float>({c.b, c.n, c.ct}, gen);
    in.grads = {s};
    if (c.kind == "skd") in.fn = [s, t] { return gkd::similarity_mse(s, t); };
    else in.fn = [s, t, tau = c.tau] { return gkd::pixel_pair_kl(s, t, {.temperature = tau}); };
  }
  step(in);                  // warm-up
  gkd::empty_host_cache();   // the baseline holds no blocks cached by the warm-up
  malloc_trim(0);  // nor heap pages that malloc kept after the warm-up freed them (they would hide its peak)
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const long base = status_kib("VmRSS:");
  Result r;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step(in);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (r.ms < 0 || ms < r.ms) r.ms = ms;
  }
  r.peak_mib = (status_kib("VmHWM:") - base) / 1024.0;
  return r;
}

// Runs pairwise_kd_pytorch.py on `cases` (eager, and torch.compile when `compile`) and adds its results,
// keyed "<mode> <spec>", to `out`.
void run_pytorch(const std::vector<Case>& cases, int threads, int reps, int warmup, bool compile,
                 std::map<std::string, Result>& out, std::string& version) {
  std::string specs;
  for (const auto& c : cases) {
    if (!specs.empty()) specs += ',';
    specs += c.spec();
  }
  if (specs.empty()) return;
  const std::string cmd = std::string("python3 ") + GKD_BENCH_DIR + "/pairwise_kd_pytorch.py --device cpu --threads " +
                          std::to_string(threads) + " --reps " + std::to_string(reps) + " --warmup " +
                          std::to_string(warmup) + " --cases " + specs + (compile ? " --compile-cases " + specs : "");
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    char spec[128], mode[32], ver[128];
    double ms = 0, peak = 0;
    int t = 0;
    if (std::sscanf(line, "pytorch %127s threads %d", ver, &t) == 2) version = ver;
    if (std::sscanf(line, "case %127s mode %31s ms %lf peak_mib %lf", spec, mode, &ms, &peak) == 4)
      out[std::string(mode) + ' ' + spec] = {ms, peak > 0 ? peak : 0.0, false};
    else if (std::sscanf(line, "case %127s mode %31s OOM", spec, mode) == 2)
      out[std::string(mode) + ' ' + spec] = {-1, -1, true};
  }
  pclose(pipe);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 3;
  bool pytorch = true, quick = false, compile = false, large = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--no-pytorch") pytorch = false;
    else if (a == "--quick") quick = true;
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--compile") compile = true;
    else if (a == "--large") large = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--threads N] [--reps N] [--no-pytorch] [--quick] [--only skd|cirkd|dicd] [--compile] "
                   "[--large]\n",
                   argv[0]);
      return 2;
    }
  }
  gkd::set_num_threads(threads);
  std::vector<Case> cases;
  for (std::int64_t n : {1024, 4096})
    for (std::int64_t c : {128, 256, 512})
      if (!quick || n == 1024) cases.push_back({"skd", 1, n, c, c, 1.0});
  cases.push_back({"cirkd", 2, 1024, 128, 256, 0.1});
  if (!quick) {
    cases.push_back({"cirkd", 1, 4096, 256, 256, 0.1});
    cases.push_back({"cirkd", 1, 4096, 512, 512, 0.1});
  }
  cases.push_back({"dicd", 16, 2, 128 * 128, 0, 4.0});
  if (large) {
    for (const auto& [n, c] : {std::pair<std::int64_t, std::int64_t>{16384, 128}, {16384, 256}, {16384, 512}, {65536, 128}})
      cases.push_back({"skd", 1, n, c, c, 1.0, true});
    cases.push_back({"cirkd", 1, 16384, 256, 256, 0.1, true});
    cases.push_back({"cirkd", 1, 65536, 128, 128, 0.1, true});
  }
  if (!only.empty()) std::erase_if(cases, [&](const Case& c) { return c.kind != only; });
  std::string version = "-";
  std::map<std::string, Result> torch;
  const auto cell = gkd::bench::table_cell;
  // The small cases, then the large ones, each group PyTorch first and then gkd: PyTorch's attempts at
  // the largest sizes (which may fill the machine's memory) come after every small gkd measurement.
  for (const bool big : {false, true}) {
    std::vector<Case> group;
    std::copy_if(cases.begin(), cases.end(), std::back_inserter(group), [&](const Case& c) { return c.large == big; });
    if (group.empty()) continue;
    if (pytorch) run_pytorch(group, threads, big ? 1 : reps, 1, compile, torch, version);
    if (!big) {
      std::printf("gkd vs PyTorch %s, CPU, %d threads, forward + backward (student), best of %d after 1 warm-up "
                  "(large cases: 1); float tiles: %s\n",
                  version.c_str(), threads, reps,
                  gkd::detail::amx_available() ? "AMX (int8 digits, bfloat16 parts)" : "float32 GEMM (no AMX)");
      std::printf("%-28s %10s %10s %10s | %8s %8s | %10s %10s %10s\n", "case kind:B:N:Cs:Ct:tau", "gkd ms",
                  "eager ms", "compile ms", "eager x", "cmp x", "gkd MiB", "eager MiB", "cmp MiB");
    }
    for (const auto& c : group) {
      const Result g = run_gkd(c, c.large ? 1 : reps);
      auto torch_result = [&](const char* mode) {
        const auto it = torch.find(std::string(mode) + ' ' + c.spec());
        return it == torch.end() ? Result{} : it->second;
      };
      const Result e = torch_result("eager"), t = torch_result("compile");
      auto ratio = [&](const Result& r) { return r.ms > 0 ? r.ms / g.ms : -1.0; };
      std::printf("%-28s %10.2f %10s %10s | %8s %8s | %10.1f %10s %10s\n", c.spec().c_str(), g.ms,
                  cell(e.ms, e.oom, "%.2f").c_str(), cell(t.ms, t.oom, "%.2f").c_str(),
                  cell(ratio(e), false, "%.2f").c_str(), cell(ratio(t), false, "%.2f").c_str(), g.peak_mib,
                  cell(e.peak_mib, e.oom, "%.1f").c_str(), cell(t.peak_mib, t.oom, "%.1f").c_str());
      std::fflush(stdout);
    }
  }
  std::printf("x = PyTorch time / gkd time (> 1: gkd faster). MiB: peak resident memory above the level before the "
              "step. OOM: PyTorch could not allocate within this machine's available memory.\n");
  return 0;
}
