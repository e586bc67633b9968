// SPDX-License-Identifier: Apache-2.0
// CPU benchmark of the tiled pair-wise and cross-reconstruction distillation losses against PyTorch
// eager on the same formulas (benchmarks/pairwise_kd_pytorch.py, run through popen with the same
// thread count): forward + backward w.r.t. the student, best of --reps, and the growth of peak
// resident memory during the step (VmHWM reset through /proc/self/clear_refs, in both processes).
//
//   build/benchmarks/gkd_bench_pairwise_kd --threads 2 [--reps 3] [--no-pytorch] [--quick] [--only skd|cirkd|dicd]
#include <chrono>
#include <cstdio>
#include <functional>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gkd/gkd.hpp"
#include "gkd/losses/cross_recon_kd.hpp"
#include "gkd/losses/pairwise_kd.hpp"

namespace {

struct Case {
  std::string kind;
  std::int64_t b, n, cs, ct;
  double tau;
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
  step(in);  // warm-up
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

std::map<std::string, Result> run_pytorch(const std::vector<Case>& cases, int threads, int reps, std::string& version) {
  std::string specs;
  for (const auto& c : cases) {
    if (!specs.empty()) specs += ',';
    specs += c.spec();
  }
  const std::string cmd = std::string("python3 ") + GKD_BENCH_DIR + "/pairwise_kd_pytorch.py --device cpu --threads " +
                          std::to_string(threads) + " --reps " + std::to_string(reps) + " --cases " + specs;
  std::map<std::string, Result> out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    char spec[128], mode[32], ver[128];
    double ms = 0, peak = 0;
    int t = 0;
    if (std::sscanf(line, "pytorch %127s threads %d", ver, &t) == 2) version = ver;
    if (std::sscanf(line, "case %127s mode %31s ms %lf peak_mib %lf", spec, mode, &ms, &peak) == 4) out[spec] = {ms, peak, false};
    else if (std::sscanf(line, "case %127s mode %31s OOM", spec, mode) == 2) out[spec] = {-1, -1, true};
  }
  pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 3;
  bool pytorch = true, quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--no-pytorch") pytorch = false;
    else if (a == "--quick") quick = true;
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--reps N] [--no-pytorch] [--quick] [--only skd|cirkd|dicd]\n", argv[0]);
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
  if (!only.empty()) std::erase_if(cases, [&](const Case& c) { return c.kind != only; });
  std::string version = "-";
  std::map<std::string, Result> torch;
  if (pytorch) torch = run_pytorch(cases, threads, reps, version);
  std::printf("gkd vs PyTorch %s eager, CPU, %d threads, forward + backward (student), best of %d\n", version.c_str(), threads,
              reps);
  std::printf("%-28s %10s %10s %10s %10s %8s\n", "case kind:B:N:Cs:Ct:tau", "gkd ms", "torch ms", "gkd MiB", "torch MiB",
              "speedup");
  for (const auto& c : cases) {
    const Result g = run_gkd(c, reps);
    const auto it = torch.find(c.spec());
    if (it == torch.end() || it->second.oom) {
      std::printf("%-28s %10.2f %10s %10.1f %10s %8s\n", c.spec().c_str(), g.ms,
                  it == torch.end() ? "-" : "OOM", g.peak_mib, "-", "-");
    } else {
      std::printf("%-28s %10.2f %10.2f %10.1f %10.1f %7.2fx\n", c.spec().c_str(), g.ms, it->second.ms, g.peak_mib,
                  it->second.peak_mib, it->second.ms / g.ms);
    }
    std::fflush(stdout);
  }
  return 0;
}
