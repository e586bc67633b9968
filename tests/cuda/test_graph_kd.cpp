// SPDX-License-Identifier: Apache-2.0
// CUDA graph-contrastive distillation kernels against the CPU oracle (gkd::graph_kd_loss with float64
// tiles) on the same random inputs: per-row losses, reduced losses and student gradients.
//
// Tolerances (relative, judged against 1% of the largest expected magnitude, see require_close), set
// from what an H200 measured (GKD_GRAPH_KD_VERBOSE=1 prints every measured error) with a ~3x margin:
// - TF32x3 (hi/lo split, three products: the tiles are ≈ fp32) leaves the fp32 online log-sum-exp and
//   accumulation: a small KL is a difference of O(1/τ) terms, and a gradient row Σ_j (q_ij − p_ij) F̂_j
//   cancels heavily (Σ_j (q − p) = 0), so fp32 sums over n columns lose ≈ √n · 6e-8 of the terms' scale:
//   losses 1e-3, gradients 1e-3 · max(1, √(n / 128)) (measured ≤ 2.8e-4 and 1.4e-3 at n = 2000).
// - TF32 rounds every operand to 10 mantissa bits (2⁻¹¹ relative), so every logit carries an error up to
//   ≈ 2·2⁻¹¹/τ; gradient elements that nearly cancel inherit it whole, so TF32 is judged norm-wise
//   (||a − e||₂/||e||₂, see require_gpu_close): τ ≥ 0.1: 2e-2; τ = 0.01: losses 5e-2, gradients 0.25, a bound
//   that only catches gross errors (element-wise 0.15 was measured there): use TF32x3 for τ < 0.1.
// - BF16 rounds the normalised rows to 8 mantissa bits (2⁻⁹ relative, 4x TF32's 2⁻¹¹) before the similarity
//   GEMMs, so its logit errors are 4x TF32's: norm-wise 8e-2 for τ ≥ 0.1 (not measured on a GPU yet). Its
//   inputs are rounded to bf16 first, as features from a bf16 autocast network are.
// - SmallGraphs computes in FP32 at every precision (its Grams accumulate C products in fp32 before the
//   normalisation, where the tiles normalise first): judged element-wise with TF32x3's tolerances (not
//   measured on a GPU yet).
#include <cuda_runtime.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gkd/cuda/graph_kd.hpp"
#include "gkd/losses/graph_kd.hpp"
#include "gkd/ops/autocast.hpp"
#include "support/check.hpp"

using namespace gkd;
using cuda::GraphKDConfig;
using cuda::GraphKDForm;
using cuda::GraphKDMask;
using cuda::GraphKDPrecision;
using cuda::GraphKDReduction;

namespace {

void check_cuda(cudaError_t e, const char* what) {
  INFO(what << ": " << cudaGetErrorString(e));
  REQUIRE(e == cudaSuccess);
}

/// A device buffer of floats, freed on scope exit.
struct DeviceFloats {
  float* ptr = nullptr;
  explicit DeviceFloats(std::size_t count) { check_cuda(cudaMalloc(&ptr, std::max<std::size_t>(count, 1) * 4), "cudaMalloc"); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  ~DeviceFloats() { cudaFree(ptr); }
  void upload(const std::vector<float>& v) { check_cuda(cudaMemcpy(ptr, v.data(), v.size() * 4, cudaMemcpyHostToDevice), "upload"); }
  std::vector<float> download(std::size_t count) const {
    std::vector<float> v(count);
    check_cuda(cudaMemcpy(v.data(), ptr, count * 4, cudaMemcpyDeviceToHost), "download");
    return v;
  }
};

struct Result {
  std::vector<float> row_loss, loss, grad;
};

/// Runs forward and backward on the GPU (None: upstream grad_rows; Mean/Sum: upstream 1.5). `fused`
/// (Mean/Sum): GraphKDForward::run_with_gradient instead, its unit-upstream gradient scaled by 1.5 here.
Result run_cuda(const GraphKDConfig& c, const std::vector<float>& s, const std::vector<float>& t,
                const std::vector<float>& grad_rows, bool fused = false) {
  DeviceFloats ds(s.size()), dt(t.size()), rows(std::size_t(c.n)), gr(std::size_t(c.n)), loss(1),
      grad(std::size_t(c.n * c.student_channels));
  ds.upload(s);
  dt.upload(t);
  gr.upload(grad_rows);
  const cuda::GraphKDForward fwd(c);
  const cuda::GraphKDBackward bwd(c);
  DeviceFloats lse(fwd.row_lse_count());
  char* ws = nullptr;
  check_cuda(cudaMalloc(&ws, std::max({fwd.workspace_bytes(), bwd.workspace_bytes(), fwd.gradient_workspace_bytes()})),
             "cudaMalloc workspace");
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  if (fused) {
    fwd.run_with_gradient(ds.ptr, dt.ptr, rows.ptr, lse.ptr, loss.ptr, grad.ptr, ws, stream);
  } else {
    fwd.run(ds.ptr, dt.ptr, rows.ptr, lse.ptr, loss.ptr, ws, stream);
    bwd.run(ds.ptr, dt.ptr, lse.ptr, gr.ptr, 1.5f, grad.ptr, ws, stream);
  }
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  check_cuda(cudaStreamDestroy(stream), "cudaStreamDestroy");
  check_cuda(cudaFree(ws), "cudaFree");
  Result r{rows.download(std::size_t(c.n)), loss.download(1), grad.download(std::size_t(c.n * c.student_channels))};
  if (fused)
    for (float& v : r.grad) v *= 1.5f;
  return r;
}

GraphKDOptions cpu_options(const GraphKDConfig& c, Reduction r) {
  GraphKDOptions o;
  o.temperature = c.temperature;
  o.mask = c.mask == GraphKDMask::Full            ? GraphMask::full()
           : c.mask == GraphKDMask::BlockDiagonal ? GraphMask::block_diagonal(c.group_size)
                                                  : GraphMask::star(c.group_size);
  o.reduction = r;
  o.eps = c.eps;
  return o;
}

/// require_close's measure (worst |a − e| / max(|e|, 1% of max |e|)), printed when GKD_GRAPH_KD_VERBOSE is set
/// so that the stated tolerances can be compared with what a GPU measures.
void report(const char* what, const GraphKDConfig& c, const std::vector<float>& a, const Tensor<float>& expected) {
  if (!std::getenv("GKD_GRAPH_KD_VERBOSE")) return;
  const auto e = expected.to_vector();
  double scale = 0, worst = 0;
  for (float v : e) scale = std::max(scale, double(std::abs(v)));
  for (std::size_t i = 0; i < a.size() && i < e.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - double(e[i])) / std::max(double(std::abs(e[i])), scale * 1e-2 + 1e-300));
  std::printf("measured n %lld C_s %lld form %d mask %d tau %g precision %d %s: %.3g\n", static_cast<long long>(c.n),
              static_cast<long long>(c.student_channels), int(c.form), int(c.mask), double(c.temperature),
              int(c.precision), what, worst);
}

/// True where the kernels compute in (about) FP32: TF32x3, and the SmallGraphs schedule at every precision.
bool fp32_arithmetic(const GraphKDConfig& c) {
  return c.precision == GraphKDPrecision::TF32x3 || cuda::graph_kd_schedule(c) == cuda::Schedule::SmallGraphs;
}

double tolerance(const GraphKDConfig& c, bool gradient) {
  if (fp32_arithmetic(c)) return gradient ? 1e-3 * std::max(1.0, std::sqrt(double(c.n) / 128.0)) : 1e-3;
  if (c.precision == GraphKDPrecision::BF16) return 8e-2;  // τ ≥ 0.1 only
  if (c.temperature >= 0.1f) return 2e-2;
  return gradient ? 0.25 : 5e-2;
}

/// GPU = CPU within `tol`: element-wise (require_close) for FP32 arithmetic; otherwise as the norm-wise relative error
/// ||a − e||₂ / ||e||₂, the usual measure for reduced-precision GEMMs. An element-wise bound is ill-posed in
/// TF32: a gradient element Σ_j (q_ij − p_ij) F̂_j that nearly cancels carries the logit error 2·2⁻¹¹/τ of
/// the whole row (a second H200 run measured 1.7e-2 and 2.4e-2 element-wise against the first run's 5.1e-3).
void require_gpu_close(const GraphKDConfig& c, const std::vector<float>& a, const Tensor<float>& expected, double tol,
                       const char* what) {
  const Tensor<float> actual = Tensor<float>::from(expected.shape(), a);
  if (fp32_arithmetic(c)) return test::require_close(actual, expected, tol, what);
  const auto e = expected.to_vector();
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < e.size(); ++i) {
    diff += (double(a[i]) - double(e[i])) * (double(a[i]) - double(e[i]));
    norm += double(e[i]) * double(e[i]);
  }
  const double rel = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  INFO(what << ": norm-wise relative error " << rel << " (tolerance " << tol << ")");
  REQUIRE(rel <= tol);
}

/// Student row and teacher row made all zero: the eps-clamped branch of the row normalisation,
/// ŝ = x / max(‖x‖, eps) = 0 and dF_s = dŝ / eps, on the GPU (normalise_rows, normalise_backward) as in
/// the CPU oracle. The zero row's gradient is O(1/eps) = O(1e12) and the others' O(1), so each is
/// compared on its own (judged together, require_close's floor of 1% of the largest value would hide
/// every other row), with the same tolerance: the clamped row is one division of the same accumulated dŝ
/// that the other rows project.
struct ZeroRows {
  std::int64_t student = -1, teacher = -1;
};

/// GPU = CPU oracle for one configuration, with reduction None (per-row losses, random grad_rows) and
/// with the configured reduction (scalar loss, upstream gradient 1.5).
void check_config(GraphKDConfig c, double scale = 1.0, ZeroRows zero = {}) {
  const bool bf16_inputs = c.precision == GraphKDPrecision::BF16;
  INFO("n " << c.n << " C_s " << c.student_channels << " C_t " << c.teacher_channels << " form "
            << (c.form == GraphKDForm::KL ? "kl" : "infonce") << " mask " << int(c.mask) << " group " << c.group_size
            << " tau " << c.temperature << " precision " << int(c.precision) << " (0 tf32, 1 tf32x3, 2 bf16)"
            << " schedule " << int(c.schedule));
  auto s = test::random<float>({c.n, c.student_channels}, 100 + std::uint64_t(c.n), float(scale));
  auto t = test::random<float>({c.n, c.teacher_channels}, 200 + std::uint64_t(c.n), float(scale));
  if (bf16_inputs) {
    detail::round_in_place(s, Precision::bf16);
    detail::round_in_place(t, Precision::bf16);
  }
  const std::int64_t cs = c.student_channels, ct = c.teacher_channels;
  if (zero.student >= 0) std::fill_n(s.data() + zero.student * cs, cs, 0.0f);
  if (zero.teacher >= 0) std::fill_n(t.data() + zero.teacher * ct, ct, 0.0f);
  const auto g = test::random<float>({c.n}, 300 + std::uint64_t(c.n));
  const bool nce = c.form == GraphKDForm::InfoNCE;
  const double tol = tolerance(c, false), gtol = tolerance(c, true);
  for (GraphKDReduction red : {GraphKDReduction::None, c.reduction}) {
    GraphKDConfig cc = c;
    cc.reduction = red;
    const Reduction r = red == GraphKDReduction::None ? Reduction::None
                        : red == GraphKDReduction::Sum ? Reduction::Sum
                                                       : Reduction::Mean;
    auto x = s.clone().requires_grad();
    const GraphKDOptions o = cpu_options(cc, r);
    auto cpu = nce ? graph_infonce_loss(x, t, o) : graph_kd_loss(x, t, o);
    if (r == Reduction::None) cpu.backward(g);
    else cpu.backward(Tensor<float>::scalar(1.5f));
    for (bool fused : {false, true}) {
      if (fused && r == Reduction::None) continue;
      INFO((fused ? "run_with_gradient" : "run, then GraphKDBackward"));
      const Result gpu = run_cuda(cc, s.to_vector(), t.to_vector(), g.to_vector(), fused);
      if (r == Reduction::None) {
        report("rows", cc, gpu.row_loss, cpu);
        require_gpu_close(c, gpu.row_loss, cpu, tol, "row losses");
      } else {
        report("loss", cc, gpu.loss, cpu);
        require_gpu_close(c, gpu.loss, cpu, tol, "reduced loss");
      }
      REQUIRE(std::all_of(gpu.grad.begin(), gpu.grad.end(), [](float v) { return std::isfinite(v); }));
      report("grad", cc, gpu.grad, x.grad());
      if (zero.student < 0) {
        require_gpu_close(c, gpu.grad, x.grad(), gtol, "student gradient");
        continue;
      }
      // the zero student row and the other rows, each on its own
      const auto expected = x.grad().to_vector();
      std::vector<float> zero_cpu, rest_cpu, zero_gpu, rest_gpu;
      for (std::int64_t i = 0; i < c.n * cs; ++i) {
        const bool in_zero_row = i / cs == zero.student;
        (in_zero_row ? zero_cpu : rest_cpu).push_back(expected[std::size_t(i)]);
        (in_zero_row ? zero_gpu : rest_gpu).push_back(gpu.grad[std::size_t(i)]);
      }
      float largest = 0;
      for (float v : zero_cpu) largest = std::max(largest, std::abs(v));
      REQUIRE(largest > 1e6f);  // the case does reach the clamped branch (a gradient of order 1/eps)
      require_gpu_close(c, zero_gpu, Tensor<float>::from({1, cs}, zero_cpu), gtol, "gradient of the zero student row");
      require_gpu_close(c, rest_gpu, Tensor<float>::from({c.n - 1, cs}, rest_cpu), gtol, "gradient of the other rows");
    }
  }
}

GraphKDConfig config(std::int64_t n, std::int64_t cs, std::int64_t ct, GraphKDMask mask, std::int64_t group, float tau,
                     GraphKDForm form = GraphKDForm::KL) {
  GraphKDConfig c;
  c.n = n;
  c.student_channels = cs;
  c.teacher_channels = ct;
  c.mask = mask;
  c.group_size = group;
  c.temperature = tau;
  c.form = form;
  return c;
}

std::vector<GraphKDConfig> grid(GraphKDForm form) {
  const bool nce = form == GraphKDForm::InfoNCE;
  auto ct = [&](std::int64_t cs, std::int64_t other) { return nce ? cs : other; };
  return {
      config(1, 8, ct(8, 8), GraphKDMask::Full, 0, 0.5f, form),
      config(2, 5, ct(5, 3), GraphKDMask::Full, 0, 0.5f, form),
      config(7, 12, ct(12, 20), GraphKDMask::Full, 0, 0.1f, form),
      config(100, 24, ct(24, 40), GraphKDMask::Full, 0, 0.2f, form),  // not a multiple of the 64-row tile
      config(130, 64, ct(64, 32), GraphKDMask::Full, 0, 1.0f, form),
      config(200, 512, ct(512, 256), GraphKDMask::BlockDiagonal, 4, 0.5f, form),  // many small graphs
      config(80, 512, ct(512, 512), GraphKDMask::Star, 5, 0.5f, form),            // DCGD star, B = 16, K = 4
      config(390, 96, ct(96, 48), GraphKDMask::BlockDiagonal, 130, 0.1f, form),   // groups straddling tiles
      config(300, 33, ct(33, 17), GraphKDMask::Star, 150, 0.3f, form),
      config(6, 4, ct(4, 4), GraphKDMask::BlockDiagonal, 1, 0.5f, form),  // no edges: zero loss and gradient
  };
}

}  // namespace

TEST_CASE("cuda graph_kd Tiles schedule, KL, equals the CPU oracle", "[cuda][graph_kd]") {
  for (auto precision : {GraphKDPrecision::TF32x3, GraphKDPrecision::TF32})
    for (auto c : grid(GraphKDForm::KL)) {
      c.precision = precision;
      c.schedule = cuda::Schedule::Tiles;
      check_config(c);
    }
}

TEST_CASE("cuda graph_kd Tiles schedule, InfoNCE, equals the CPU oracle", "[cuda][graph_kd]") {
  for (auto precision : {GraphKDPrecision::TF32x3, GraphKDPrecision::TF32})
    for (auto c : grid(GraphKDForm::InfoNCE)) {
      c.precision = precision;
      c.schedule = cuda::Schedule::Tiles;
      check_config(c);
    }
}

TEST_CASE("cuda graph_kd at tau 0.01, large norms and Sum reduction", "[cuda][graph_kd]") {
  for (auto precision : {GraphKDPrecision::TF32x3, GraphKDPrecision::TF32})
    for (auto form : {GraphKDForm::KL, GraphKDForm::InfoNCE}) {
      auto c = config(150, 32, 32, GraphKDMask::Full, 0, 0.01f, form);
      c.precision = precision;
      c.reduction = GraphKDReduction::Sum;
      for (auto schedule : {cuda::Schedule::Tiles, cuda::Schedule::Panels}) {
        c.schedule = schedule;
        check_config(c, 1e4);
      }
      auto star = config(120, 64, 64, GraphKDMask::Star, 6, 0.01f, form);
      star.precision = precision;
      check_config(star);
    }
}

TEST_CASE("cuda graph_kd Tiles schedule, N = 2000 (not a tile multiple), C_s != C_t", "[cuda][graph_kd]") {
  auto c = config(2000, 128, 64, GraphKDMask::Full, 0, 0.1f);
  c.precision = GraphKDPrecision::TF32x3;
  c.schedule = cuda::Schedule::Tiles;  // the Panels test below covers this size too
  check_config(c);
}

TEST_CASE("cuda graph_kd Panels schedule equals the CPU oracle", "[cuda][graph_kd]") {
  for (auto form : {GraphKDForm::KL, GraphKDForm::InfoNCE}) {
    auto configs = grid(form);
    const bool nce = form == GraphKDForm::InfoNCE;
    configs.push_back(config(2000, 128, nce ? 128 : 64, GraphKDMask::Full, 0, 0.1f, form));  // the default: one panel
    configs.push_back(configs.back());
    configs.back().panel_rows = 512;  // 4 panels, last short
    configs.push_back(configs.back());
    configs.back().panel_rows = 700;  // 3 panels, not a multiple of 32
    configs.push_back(config(2600, 40, nce ? 40 : 24, GraphKDMask::BlockDiagonal, 1300, 0.2f, form));
    configs.back().panel_rows = 512;  // 3 panels per graph
    configs.push_back(config(96, 1000, nce ? 1000 : 700, GraphKDMask::Full, 0, 0.5f, form));  // beyond the tiles' limit
    for (auto precision : {GraphKDPrecision::TF32x3, GraphKDPrecision::TF32})
      for (auto c : configs) {
        if (c.mask == GraphKDMask::Star) continue;
        c.precision = precision;
        c.schedule = cuda::Schedule::Panels;
        check_config(c);
      }
  }
}

TEST_CASE("cuda graph_kd SmallGraphs schedule equals the CPU oracle", "[cuda][graph_kd]") {
  for (auto form : {GraphKDForm::KL, GraphKDForm::InfoNCE}) {
    const bool nce = form == GraphKDForm::InfoNCE;
    std::vector<GraphKDConfig> configs;
    for (const auto& c : grid(form))
      if ((c.mask == GraphKDMask::Full ? c.n : c.group_size) <= cuda::kSmallGraphsMaxNodes) configs.push_back(c);
    // every held size (16, 32, 64 and 128 rows), groups not a multiple of 16, channels over several chunks and
    // not a multiple of 32, C_s != C_t, one channel
    configs.push_back(config(17 * 6, 45, nce ? 45 : 70, GraphKDMask::BlockDiagonal, 17, 0.3f, form));
    configs.push_back(config(64 * 8, 512, nce ? 512 : 256, GraphKDMask::BlockDiagonal, 64, 0.5f, form));
    configs.push_back(config(128 * 3, 700, nce ? 700 : 1000, GraphKDMask::Star, 128, 0.2f, form));
    configs.push_back(config(100, 130, nce ? 130 : 20, GraphKDMask::Full, 0, 0.1f, form));
    configs.push_back(config(40, 1, 1, GraphKDMask::BlockDiagonal, 8, 0.5f, form));
    configs.push_back(config(16 * 200, 64, nce ? 64 : 48, GraphKDMask::Star, 16, 0.5f, form));  // many blocks
    for (auto precision : {GraphKDPrecision::TF32x3, GraphKDPrecision::TF32})
      for (auto c : configs) {
        c.precision = precision;  // SmallGraphs computes in FP32 at every precision: judged element-wise
        c.schedule = cuda::Schedule::SmallGraphs;
        check_config(c);
      }
  }
}

TEST_CASE("cuda graph_kd SmallGraphs InfoNCE with one array as student and teacher", "[cuda][graph_kd]") {
  auto c = config(60, 24, 24, GraphKDMask::BlockDiagonal, 6, 0.5f, GraphKDForm::InfoNCE);
  c.schedule = cuda::Schedule::SmallGraphs;
  const auto s = test::random<float>({c.n, c.student_channels}, 7);
  auto x = s.clone().requires_grad();
  GraphKDOptions o = cpu_options(c, Reduction::Mean);
  auto cpu = graph_infonce_loss(x, s, o);
  cpu.backward();
  DeviceFloats d(std::size_t(c.n * c.student_channels)), rows(std::size_t(c.n)), lse(std::size_t(c.n)), loss(1),
      grad(std::size_t(c.n * c.student_channels));
  d.upload(s.to_vector());
  cuda::GraphKDForward(c).run_with_gradient(d.ptr, d.ptr, rows.ptr, lse.ptr, loss.ptr, grad.ptr, nullptr, nullptr);
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  test::require_close(Tensor<float>::from({}, loss.download(1)), cpu, 1e-3, "loss");
  test::require_close(Tensor<float>::from({c.n, c.student_channels}, grad.download(std::size_t(c.n * c.student_channels))),
                      x.grad(), 1e-3, "student gradient");
}

TEST_CASE("cuda graph_kd at sizes small enough for compute-sanitizer", "[cuda][graph_kd][sanitize]") {
  // Every kernel of both schedules, several panels (64 rows) and a short last one, in seconds under
  // memcheck and racecheck: tools/gpu_check.sh runs the sanitizers on this tag.
  for (auto form : {GraphKDForm::KL, GraphKDForm::InfoNCE}) {
    const bool nce = form == GraphKDForm::InfoNCE;
    for (auto precision : {GraphKDPrecision::TF32, GraphKDPrecision::BF16}) {
      for (auto c : {config(300, 40, nce ? 40 : 24, GraphKDMask::Full, 0, 0.2f, form),
                     config(300, 40, nce ? 40 : 24, GraphKDMask::BlockDiagonal, 150, 0.2f, form)}) {
        c.precision = precision;
        c.schedule = cuda::Schedule::Panels;
        c.panel_rows = 64;
        check_config(c);
      }
      for (auto c : {config(120, 40, nce ? 40 : 24, GraphKDMask::Star, 6, 0.5f, form),
                     config(300, 70, nce ? 70 : 33, GraphKDMask::BlockDiagonal, 100, 0.2f, form)}) {
        c.precision = precision;
        c.schedule = cuda::Schedule::SmallGraphs;
        check_config(c);
      }
      if (precision == GraphKDPrecision::BF16) continue;  // the tiles run TF32 and TF32x3 only
      for (auto c : {config(130, 32, nce ? 32 : 16, GraphKDMask::Full, 0, 0.5f, form),
                     config(120, 64, 64, GraphKDMask::Star, 6, 0.5f, form)}) {
        c.precision = precision;
        c.schedule = cuda::Schedule::Tiles;
        check_config(c);
      }
    }
  }
}

TEST_CASE("cuda graph_kd BF16 similarities on bf16 inputs equal the CPU oracle", "[cuda][graph_kd]") {
  for (auto form : {GraphKDForm::KL, GraphKDForm::InfoNCE}) {
    auto configs = grid(form);
    const bool nce = form == GraphKDForm::InfoNCE;
    configs.push_back(config(2000, 128, nce ? 128 : 64, GraphKDMask::Full, 0, 0.1f, form));
    configs.push_back(config(2600, 40, nce ? 40 : 24, GraphKDMask::BlockDiagonal, 1300, 0.2f, form));
    for (auto c : configs) {
      if (c.mask == GraphKDMask::Star && c.group_size > cuda::kSmallGraphsMaxNodes) continue;  // would be Tiles
      c.precision = GraphKDPrecision::BF16;  // Auto resolves to SmallGraphs (FP32) or Panels (bf16 GEMMs)
      const bool small = c.mask != GraphKDMask::Full && c.group_size <= cuda::kSmallGraphsMaxNodes;
      REQUIRE(cuda::graph_kd_schedule(c) == (small ? cuda::Schedule::SmallGraphs : cuda::Schedule::Panels));
      check_config(c);
    }
  }
}

TEST_CASE("cuda graph_kd with an all-zero student row and teacher row equals the CPU oracle", "[cuda][graph_kd]") {
  // n = 100: not a multiple of the 64-row tile; the zero rows in different row blocks
  for (auto form : {GraphKDForm::KL, GraphKDForm::InfoNCE})
    for (auto schedule : {cuda::Schedule::Tiles, cuda::Schedule::Panels, cuda::Schedule::SmallGraphs}) {
      auto c = config(100, 24, form == GraphKDForm::InfoNCE ? 24 : 40, GraphKDMask::Full, 0, 0.2f, form);
      c.precision = GraphKDPrecision::TF32x3;  // element-wise tolerances
      c.schedule = schedule;
      check_config(c, 1.0, {.student = 3, .teacher = 70});
    }
}

TEST_CASE("cuda graph_kd is deterministic", "[cuda][graph_kd]") {
  auto c = config(1100, 64, 48, GraphKDMask::Full, 0, 0.2f);
  c.panel_rows = 512;  // three panels
  const auto s = test::random<float>({1100, 64}, 1).to_vector(), t = test::random<float>({1100, 48}, 2).to_vector();
  const std::vector<float> g(1100, 1.0f);
  for (auto schedule : {cuda::Schedule::Tiles, cuda::Schedule::Panels, cuda::Schedule::SmallGraphs}) {
    c.schedule = schedule;
    if (schedule == cuda::Schedule::SmallGraphs) {  // 11 graphs of 100
      c.mask = GraphKDMask::BlockDiagonal;
      c.group_size = 100;
    }
    const Result a = run_cuda(c, s, t, g), b = run_cuda(c, s, t, g);
    REQUIRE(a.row_loss == b.row_loss);
    REQUIRE(a.loss == b.loss);
    REQUIRE(a.grad == b.grad);
  }
}

TEST_CASE("cuda graph_kd rejects bad configurations with gkd::Error", "[cuda][graph_kd][errors]") {
  auto c = config(6, 3, 4, GraphKDMask::BlockDiagonal, 4, 1.0f);
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("group_size 4") && Catch::Contains("n = 6"));
  c.mask = GraphKDMask::Full;
  c.temperature = 0.0f;
  REQUIRE_THROWS_WITH(cuda::GraphKDBackward(c), Catch::Contains("temperature"));
  c.temperature = 1.0f;
  c.form = GraphKDForm::InfoNCE;
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("InfoNCE"));
  c.form = GraphKDForm::KL;
  c.mask = GraphKDMask::Star;
  c.group_size = 3;
  c.schedule = cuda::Schedule::Panels;
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("Panels") && Catch::Contains("star"));
  c.precision = GraphKDPrecision::BF16;
  c.schedule = cuda::Schedule::Auto;
  REQUIRE(cuda::graph_kd_schedule(c) == cuda::Schedule::SmallGraphs);  // stars of ≤ 128 nodes
  c.n = 300;
  c.group_size = 150;  // a star too large for SmallGraphs runs on the Tiles
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("BF16") && Catch::Contains("Tiles"));
  c.precision = GraphKDPrecision::TF32;
  c.schedule = cuda::Schedule::SmallGraphs;
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("SmallGraphs") && Catch::Contains("group_size 150"));
  c.mask = GraphKDMask::Full;
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("SmallGraphs") && Catch::Contains("n = 300"));
  c.n = 6;
  c.precision = GraphKDPrecision::BF16;
  c.schedule = cuda::Schedule::Tiles;
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("BF16") && Catch::Contains("Tiles"));
  c.precision = GraphKDPrecision::TF32;
  c.schedule = cuda::Schedule::Auto;
  c.panel_rows = -1;
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("panel_rows"));
  c.panel_rows = 0;
  c.n = 0;
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c), Catch::Contains("non-empty"));
  c.n = 6;
  const cuda::GraphKDForward fwd(c);
  REQUIRE_THROWS_WITH(fwd.run(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr), Catch::Contains("null"));
  c.reduction = GraphKDReduction::None;
  const cuda::GraphKDBackward bwd(c);
  DeviceFloats dummy(64);
  REQUIRE_THROWS_WITH(cuda::GraphKDForward(c).run_with_gradient(dummy.ptr, dummy.ptr, dummy.ptr, dummy.ptr, nullptr,
                                                                dummy.ptr, dummy.ptr, nullptr),
                      Catch::Contains("Mean or Sum"));
  REQUIRE_THROWS_WITH(bwd.run(dummy.ptr, dummy.ptr, dummy.ptr, nullptr, 1.0f, dummy.ptr, dummy.ptr, nullptr),
                      Catch::Contains("grad_rows"));
}
