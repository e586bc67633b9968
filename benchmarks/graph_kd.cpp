// SPDX-License-Identifier: Apache-2.0
// CPU graph-contrastive distillation loss (KL form, gkd/losses/graph_kd.hpp), forward + backward: gkd's
// tiled op (default float64 tiles, and fast_float_tiles) against PyTorch eager on the same formula with
// materialised N x N matrices (benchmarks/graph_kd_pytorch.py) in the same invocation and thread count.
// Peak memory is the resident-set high-water mark above the level before the timed loop (Linux
// /proc/self/clear_refs), for gkd in this process and for PyTorch in its own.
//
//   build/benchmarks/gkd_bench_graph_kd [--threads 1] [--reps 3] [--no-pytorch]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gkd/core/parallel.hpp"
#include "gkd/core/random.hpp"
#include "gkd/losses/graph_kd.hpp"

namespace {

struct Case {
  std::int64_t n, cs, ct;
  gkd::GraphMask mask;
  const char* what;
};

// (ostringstream throughout: GCC 12 -O3 raises a false -Wrestrict on chained std::string +)
std::string mask_arg(const gkd::GraphMask& m) {
  std::ostringstream k;
  k << (m.kind == gkd::GraphMask::Kind::Full ? "full" : m.kind == gkd::GraphMask::Kind::Star ? "star" : "block") << ','
    << m.group_size;
  return k.str();
}

std::string key(const Case& c) {
  std::ostringstream k;
  k << c.n << ',' << c.cs << ',' << c.ct << ',' << mask_arg(c.mask);
  return k.str();
}

long vm_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string f = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.rfind(f, 0) == 0) return std::atol(line.c_str() + f.size());
  return 0;
}

void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

struct Measure {
  double ms = -1, peak_mib = -1;
};

Measure run_gkd(const Case& c, bool fast, int reps, double tau) {
  gkd::Generator gen(0);
  const auto s = gkd::randn<float>({c.n, c.cs}, gen);
  const auto t = gkd::randn<float>({c.n, c.ct}, gen);
  gkd::GraphKDOptions o;
  o.temperature = tau;
  o.mask = c.mask;
  o.fast_float_tiles = fast;
  auto step = [&] {
    auto x = s.clone().requires_grad();
    auto l = gkd::graph_kd_loss(x, t, o);
    l.backward();
    return x.grad().data()[0];
  };
  volatile float sink = step();  // warm-up
  reset_peak();
  const long base = vm_kib("VmRSS");
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  (void)sink;
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], double(vm_kib("VmHWM") - base) / 1024.0};
}

std::map<std::string, Measure> run_pytorch(const std::vector<Case>& cases, int threads, int reps, double tau,
                                           std::string& version) {
  std::ostringstream cmd;
  cmd << "python3 " << GKD_BENCH_DIR << "/graph_kd_pytorch.py --threads " << threads << " --reps " << reps << " --tau "
      << tau << " --cases";
  for (const auto& c : cases) cmd << ' ' << key(c);
  cmd << " 2>/dev/null";
  std::map<std::string, Measure> out;
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
    if (tag == "ms") line >> m.ms >> tag >> m.peak_mib;
    std::ostringstream k;
    k << n << ',' << cs << ',' << ct << ',' << mask << ',' << group;
    out[k.str()] = m;
  }
  pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 3;
  bool pytorch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--no-pytorch") pytorch = false;
    else {
      std::cerr << "usage: " << argv[0] << " [--threads N] [--reps N] [--no-pytorch]\n";
      return 2;
    }
  }
  gkd::set_num_threads(threads);
  const double tau = 0.5;
  using M = gkd::GraphMask;
  const std::vector<Case> cases = {
      {64, 512, 512, M::full(), "GKD inter (B=16,K=4)"},
      {80, 512, 512, M::star(5), "GKD intra star"},
      {1024, 128, 128, M::full(), "pixel graph"},
      {1024, 256, 256, M::full(), "pixel graph"},
      {1024, 512, 512, M::full(), "pixel graph"},
      {4096, 128, 128, M::full(), "pixel graph"},
      {4096, 512, 512, M::full(), "pixel graph"},
  };
  std::string version = "not run";
  std::map<std::string, Measure> torch;
  if (pytorch) torch = run_pytorch(cases, threads, reps, tau, version);
  std::printf("graph_kd_loss (KL, tau %.2f) forward+backward, CPU, %d thread(s), median of %d; PyTorch %s eager\n", tau,
              threads, reps, version.c_str());
  std::printf("%-22s %6s %5s %-8s | %11s %11s %11s | %8s %8s | %9s %9s\n", "case", "N", "C", "mask", "gkd f64 ms",
              "gkd f32 ms", "torch ms", "f64 x", "f32 x", "gkd MiB", "torch MiB");
  for (const auto& c : cases) {
    const Measure exact = run_gkd(c, false, reps, tau), fast = run_gkd(c, true, reps, tau);
    const auto it = torch.find(key(c));
    const Measure t = it == torch.end() ? Measure{} : it->second;
    auto ratio = [&](const Measure& g) { return t.ms > 0 ? t.ms / g.ms : 0.0; };
    std::printf("%-22s %6lld %5lld %-8s | %11.2f %11.2f %11.2f | %8.2f %8.2f | %9.1f %9.1f\n", c.what,
                static_cast<long long>(c.n), static_cast<long long>(c.cs), mask_arg(c.mask).c_str(), exact.ms, fast.ms,
                t.ms, ratio(exact), ratio(fast), std::max(exact.peak_mib, fast.peak_mib), t.peak_mib);
  }
  std::printf("x = PyTorch time / gkd time (> 1: gkd faster). MiB: peak resident memory above the level before the "
              "timed loop.\n");
  return 0;
}
