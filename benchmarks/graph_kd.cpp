// SPDX-License-Identifier: Apache-2.0
// CPU graph-contrastive distillation loss (gkd/losses/graph_kd.hpp: the KL form, and the InfoNCE form on
// pixel graphs), forward + backward: gkd's tiled op (default float64 tiles, and fast_float_tiles) against
// PyTorch eager on the same formula with materialised N x N matrices (benchmarks/graph_kd_pytorch.py; block
// and star masks: batched g x g matrices per group) in the same invocation and thread count.
// Peak memory is the resident-set high-water mark above the level before the timed loop (Linux
// /proc/self/clear_refs), for gkd in this process and for PyTorch in its own. --compile adds a
// torch.compile column. --large adds the pixel graphs N = 16384 (C = 128, 256, 512) and
// N = 65536 (C = 128): minutes per case, so those run once after one warm-up, with float32 tiles only; a
// case that does not fit this machine's memory shows PyTorch as OOM (its script caps its address space).
//
//   build/benchmarks/gkd_bench_graph_kd [--threads 1] [--reps 3] [--no-pytorch] [--compile] [--large]
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gkd/core/host_cache.hpp"
#include "gkd/core/parallel.hpp"
#include "gkd/core/random.hpp"
#include "gkd/losses/graph_kd.hpp"
#include "table_cell.hpp"

namespace {

struct Case {
  std::int64_t n, cs, ct;
  gkd::GraphMask mask;
  const char* what;
  bool large = false;    ///< run once after one warm-up, float32 tiles only
  bool infonce = false;  ///< graph_infonce_loss (full mask) instead of graph_kd_loss
};

// (ostringstream throughout: GCC 12 -O3 raises a false -Wrestrict on chained std::string +)
std::string mask_arg(const Case& c) {
  const gkd::GraphMask& m = c.mask;
  std::ostringstream k;
  const char* kind = m.kind == gkd::GraphMask::Kind::Full ? "full" : m.kind == gkd::GraphMask::Kind::Star ? "star" : "block";
  k << (c.infonce ? "infonce" : kind) << ',' << m.group_size;
  return k.str();
}

std::string key(const Case& c) {
  std::ostringstream k;
  k << c.n << ',' << c.cs << ',' << c.ct << ',' << mask_arg(c);
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
  bool oom = false;
};

Measure run_gkd(const Case& c, bool fast, int reps, double tau) {
  if (c.large && !fast) return {};
  gkd::Generator gen(0);
  const auto s = gkd::randn<float>({c.n, c.cs}, gen);
  const auto t = gkd::randn<float>({c.n, c.ct}, gen);
  gkd::GraphKDOptions o;
  o.temperature = tau;
  o.mask = c.mask;
  o.fast_float_tiles = fast;
  auto step = [&] {
    auto x = s.clone().requires_grad();
    auto l = c.infonce ? gkd::graph_infonce_loss(x, t, o) : gkd::graph_kd_loss(x, t, o);
    l.backward();
    return x.grad().data()[0];
  };
  volatile float sink = step();  // warm-up
  gkd::empty_host_cache();       // the baseline holds no blocks cached by the warm-up
  malloc_trim(0);  // nor heap pages that malloc kept after the warm-up freed them (they would hide its peak)
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

// Parses graph_kd_pytorch.py's lines ("pytorch <version> ...", "case <key> ms <t> peak_mib <m>" or
// "case <key> oom") into `out`.
void read_pytorch(const std::string& cmd, std::map<std::string, Measure>& out, std::string& version) {
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return;
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
    if (tag == "ms") line >> m.ms >> tag >> m.peak_mib, m.peak_mib = m.peak_mib > 0 ? m.peak_mib : 0.0;
    m.oom = tag == "oom";
    std::ostringstream k;
    k << n << ',' << cs << ',' << ct << ',' << mask << ',' << group;
    out[k.str()] = m;
  }
  pclose(pipe);
}

// Runs graph_kd_pytorch.py on `cases` (large ones once after one warm-up) into `out`.
void run_pytorch(const std::vector<Case>& cases, int threads, int reps, double tau, bool compile,
                 std::map<std::string, Measure>& out, std::string& version) {
  const bool large = cases.front().large;
  std::ostringstream cmd;
  cmd << "python3 " << GKD_BENCH_DIR << "/graph_kd_pytorch.py --threads " << threads << " --reps " << (large ? 1 : reps)
      << " --warmup " << (large ? 1 : 2) << " --tau " << tau << (compile ? " --compile" : "") << " --cases";
  for (const auto& c : cases) cmd << ' ' << key(c);
  cmd << " 2>/dev/null";
  read_pytorch(cmd.str(), out, version);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 3;
  bool pytorch = true, compile = false, large = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--no-pytorch") pytorch = false;
    else if (a == "--compile") compile = true;
    else if (a == "--large") large = true;
    else {
      std::cerr << "usage: " << argv[0] << " [--threads N] [--reps N] [--no-pytorch] [--compile] [--large]\n";
      return 2;
    }
  }
  gkd::set_num_threads(threads);
  const double tau = 0.5;
  using M = gkd::GraphMask;
  std::vector<Case> cases = {
      {64, 512, 512, M::full(), "GKD inter (B=16,K=4)"},
      {80, 512, 512, M::star(5), "GKD intra star"},
      {320, 512, 512, M::star(5), "intra star B=64 K=4"},
      {4096, 512, 512, M::block_diagonal(64), "64 graphs of 64"},
      {1024, 128, 128, M::full(), "pixel graph"},
      {1024, 256, 256, M::full(), "pixel graph"},
      {1024, 512, 512, M::full(), "pixel graph"},
      {4096, 128, 128, M::full(), "pixel graph"},
      {4096, 512, 512, M::full(), "pixel graph"},
      {1024, 512, 512, M::full(), "pixel graph InfoNCE", false, true},
      {4096, 128, 128, M::full(), "pixel graph InfoNCE", false, true},
      {4096, 512, 512, M::full(), "pixel graph InfoNCE", false, true},
  };
  if (large)
    for (const auto& [n, c] : {std::pair{16384, 128}, {16384, 256}, {16384, 512}, {65536, 128}})
      cases.push_back({n, c, c, M::full(), "pixel graph", true});
  std::string version = "not run";
  std::map<std::string, Measure> eager, compiled;
  const auto cell = gkd::bench::table_cell;
  auto find = [&](const std::map<std::string, Measure>& m, const Case& c) {
    const auto it = m.find(key(c));
    return it == m.end() ? Measure{} : it->second;
  };
  // The small cases, then the large ones, each group PyTorch first and then gkd: PyTorch's attempts at
  // the largest sizes (which may fill the machine's memory) come after every small gkd measurement.
  for (const bool big : {false, true}) {
    std::vector<Case> group;
    std::copy_if(cases.begin(), cases.end(), std::back_inserter(group), [&](const Case& c) { return c.large == big; });
    if (group.empty()) continue;
    if (pytorch) run_pytorch(group, threads, reps, tau, false, eager, version);
    if (pytorch && compile) run_pytorch(group, threads, reps, tau, true, compiled, version);
    if (!big) {
      std::printf("graph_kd_loss (KL; mask infonce: graph_infonce_loss), tau %.2f, forward+backward, CPU, %d "
                  "thread(s), median of %d (large cases: 1 after 1 warm-up); PyTorch %s; f32 tiles: %s\n",
                  tau, threads, reps, version.c_str(),
                  gkd::detail::amx_available() ? "AMX (int8 digits, bfloat16 parts)" : "float32 GEMM (no AMX)");
      std::printf("%-22s %6s %5s %-9s | %10s %10s %10s %10s | %7s %7s %7s | %8s %9s %9s\n", "case", "N", "C", "mask",
                  "gkd f64 ms", "gkd f32 ms", "eager ms", "compile ms", "f64 x", "f32 x", "cmp x", "gkd MiB",
                  "eager MiB", "cmp MiB");
    }
    for (const auto& c : group) {
      const int n = c.large ? 1 : reps;
      const Measure exact = run_gkd(c, false, n, tau), fast = run_gkd(c, true, n, tau);
      const Measure e = find(eager, c), t = find(compiled, c);
      auto ratio = [](const Measure& torch, const Measure& g) {
        return torch.ms > 0 && g.ms > 0 ? torch.ms / g.ms : -1.0;
      };
      std::printf("%-22s %6lld %5lld %-9s | %10s %10s %10s %10s | %7s %7s %7s | %8.1f %9s %9s\n", c.what,
                  static_cast<long long>(c.n), static_cast<long long>(c.cs), mask_arg(c).c_str(),
                  cell(exact.ms, false, "%.2f").c_str(), cell(fast.ms, false, "%.2f").c_str(),
                  cell(e.ms, e.oom, "%.2f").c_str(), cell(t.ms, t.oom, "%.2f").c_str(),
                  cell(ratio(e, exact), false, "%.2f").c_str(), cell(ratio(e, fast), false, "%.2f").c_str(),
                  cell(ratio(t, fast), false, "%.2f").c_str(), std::max(exact.peak_mib, fast.peak_mib),
                  cell(e.peak_mib, e.oom, "%.1f").c_str(), cell(t.peak_mib, t.oom, "%.1f").c_str());
      std::fflush(stdout);
    }
  }
  std::printf("x = PyTorch time / gkd time (> 1: gkd faster): f64 and f32 against eager, cmp = torch.compile against "
              "gkd f32. MiB: peak resident memory above the level before the timed loop. OOM: PyTorch could not "
              "allocate within this machine's available memory.\n");
  return 0;
}
