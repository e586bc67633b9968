// SPDX-License-Identifier: Apache-2.0
// CUDA SKD similarity MSE and CIRKD pixel-pair KL against the CPU op (run in double on the same
// float inputs): losses and student gradients, N = 1, N not a multiple of the 64-node tile, C_s ≠ C_t,
// C not a multiple of 16, TF32 and 3xTF32 similarities; the backward scaling; argument errors.
//
// Tolerances (relative L2 error of the gradient, relative error of the loss): TF32 rounds every
// operand to 10 mantissa bits (2^-11 ≈ 5e-4 relative); similarities of unit rows then carry ~5e-4
// absolute error, which the SKD difference (a_s − a_t) and the CIRKD logits (÷ τ) amplify: 2e-2 for
// TF32 (τ ≥ 0.5). 3xTF32 recovers fp32 products: 1e-4 (τ ≥ 0.1). bf16 similarities round to 8 mantissa
// bits, 4x TF32's error: 8e-2 (τ ≥ 0.5; not yet measured on a GPU), on inputs rounded to bf16 first as
// features from a bf16 autocast network are.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gkd/core/autocast.hpp"
#include "gkd/cuda/pairwise_kd.hpp"
#include "gkd/losses/pairwise_kd.hpp"
#include "support/device_buffer.hpp"

using gkd::test::DeviceBuffer;
using gkd::test::random_floats;
using gkd::test::relative_l2;

namespace {

enum class Loss { Mse, Kl };

/// Requires the GPU loss within tol·|loss| + loss_floor of the CPU's and the gradient within relative
/// L2 error tol (absolute where the CPU's gradient vanishes). With `zero_s` / `zero_t` ≥ 0, that student
/// row / teacher row (of the B·N rows) is all zero: the eps-clamped branch of the row normalisation
/// (ŝ = 0, gradient dŝ / eps on both sides). The zero row's gradient is O(1/eps) and the others' O(1), so
/// each is then compared on its own (one relative L2 error over both would see the zero row alone).
/// Panels are 512 rows here where args.panel_rows is 0, so that N > 512 runs several (the default height
/// would hold these graphs in one panel); -1 asks for the default height.
void check_against_cpu(Loss loss, gkd::cuda::PairwiseShape shape, gkd::cuda::PairwiseArgs args, double tol,
                       double loss_floor = 1e-7, std::int64_t zero_s = -1, std::int64_t zero_t = -1) {
  INFO((loss == Loss::Mse ? "similarity_mse" : "pixel_pair_kl") << " B " << shape.batch << " N " << shape.nodes << " C_s "
                                                                  << shape.cs << " C_t " << shape.ct << " tau "
                                                                  << args.temperature << " mean " << args.mean
                                                                  << " precise " << args.precise << " schedule "
                                                                  << int(args.schedule) << " bf16 " << args.bf16
                                                                  << " panel_rows " << args.panel_rows);
  if (args.panel_rows == 0) args.panel_rows = 512;
  else if (args.panel_rows < 0) args.panel_rows = 0;  // -1: the default height
  const std::int64_t ns = shape.batch * shape.nodes * shape.cs, nt = shape.batch * shape.nodes * shape.ct;
  auto s = random_floats(ns, 1000 + shape.nodes, 1.5), t = random_floats(nt, 2000 + shape.nodes, 0.7);
  if (args.bf16)
    for (auto* v : {&s, &t})
      for (float& x : *v) x = gkd::round_to(gkd::Precision::bf16, x);
  INFO("zero student row " << zero_s << ", zero teacher row " << zero_t);
  if (zero_s >= 0) std::fill(s.begin() + zero_s * shape.cs, s.begin() + (zero_s + 1) * shape.cs, 0.0f);
  if (zero_t >= 0) std::fill(t.begin() + zero_t * shape.ct, t.begin() + (zero_t + 1) * shape.ct, 0.0f);
  // CPU oracle in double on the same float values
  const std::vector<double> s64(s.begin(), s.end()), t64(t.begin(), t.end());
  std::vector<double> grad_ref(static_cast<std::size_t>(ns));
  const gkd::Reduction r = args.mean ? gkd::Reduction::Mean : gkd::Reduction::Sum;
  const double loss_ref =
      loss == Loss::Mse
          ? gkd::similarity_mse_raw(s64.data(), t64.data(), shape.batch, shape.nodes, shape.cs, shape.ct,
                                    {.eps = args.eps, .reduction = r}, grad_ref.data())
          : gkd::pixel_pair_kl_raw(s64.data(), t64.data(), shape.batch, shape.nodes, shape.cs, shape.ct,
                                   {.temperature = args.temperature, .eps = args.eps, .reduction = r}, grad_ref.data());
  DeviceBuffer<float> ds(s), dt(t), dloss(1), dgrad(static_cast<std::size_t>(ns));
  const std::size_t bytes = loss == Loss::Mse ? gkd::cuda::similarity_mse_workspace(shape, args)
                                              : gkd::cuda::pixel_pair_kl_workspace(shape, args);
  DeviceBuffer<char> ws(bytes);
  if (loss == Loss::Mse) gkd::cuda::similarity_mse_forward(ds.ptr, dt.ptr, shape, args, dloss.ptr, dgrad.ptr, ws.ptr, bytes);
  else gkd::cuda::pixel_pair_kl_forward(ds.ptr, dt.ptr, shape, args, dloss.ptr, dgrad.ptr, ws.ptr, bytes);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  const float loss_gpu = dloss.download(1)[0];
  const auto grad_gpu = dgrad.download(static_cast<std::size_t>(ns));
  INFO("loss gpu " << loss_gpu << " cpu " << loss_ref);
  REQUIRE(std::isfinite(loss_gpu));
  REQUIRE(std::abs(loss_gpu - loss_ref) <= tol * std::abs(loss_ref) + loss_floor);
  if (zero_s < 0) {
    const double err = relative_l2(grad_gpu, grad_ref);
    INFO("gradient relative L2 error " << err);
    REQUIRE(err <= tol);
  } else {
    std::vector<float> zero_gpu, rest_gpu;
    std::vector<double> zero_ref, rest_ref;
    double largest = 0;
    for (std::int64_t i = 0; i < ns; ++i) {
      const bool in_zero_row = i / shape.cs == zero_s;
      (in_zero_row ? zero_gpu : rest_gpu).push_back(grad_gpu[std::size_t(i)]);
      (in_zero_row ? zero_ref : rest_ref).push_back(grad_ref[std::size_t(i)]);
      if (in_zero_row) largest = std::max(largest, std::abs(grad_ref[std::size_t(i)]));
    }
    REQUIRE(largest > 1e6);  // the case does reach the clamped branch (a gradient of order 1/eps)
    const double zero_err = relative_l2(zero_gpu, zero_ref), rest_err = relative_l2(rest_gpu, rest_ref);
    INFO("gradient relative L2 error: zero row " << zero_err << ", other rows " << rest_err);
    REQUIRE(zero_err <= tol);
    REQUIRE(rest_err <= tol);
  }
  // loss-only call: same loss
  if (loss == Loss::Mse) gkd::cuda::similarity_mse_forward(ds.ptr, dt.ptr, shape, args, dloss.ptr, nullptr, ws.ptr, bytes);
  else gkd::cuda::pixel_pair_kl_forward(ds.ptr, dt.ptr, shape, args, dloss.ptr, nullptr, ws.ptr, bytes);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  REQUIRE(dloss.download(1)[0] == loss_gpu);
}

}  // namespace

TEST_CASE("CUDA similarity_mse equals the CPU op", "[cuda][pairwise_kd]") {
  using gkd::cuda::PairwiseShape;
  for (const auto schedule : {gkd::cuda::Schedule::Tiles, gkd::cuda::Schedule::Panels})
    for (const PairwiseShape shape : {PairwiseShape{1, 1, 8, 8}, PairwiseShape{2, 37, 5, 11}, PairwiseShape{1, 64, 16, 32},
                                      PairwiseShape{2, 130, 64, 48}, PairwiseShape{3, 200, 33, 70},
                                      PairwiseShape{1, 1100, 8, 12}}) {  // tiles: 16 column splits; panels: 3 of 512 rows
      for (bool mean : {true, false}) {
        check_against_cpu(Loss::Mse, shape, {.mean = mean, .precise = false, .schedule = schedule},
                          shape.nodes == 1 ? 1e-4 : 2e-2);
        check_against_cpu(Loss::Mse, shape, {.mean = mean, .precise = true, .schedule = schedule}, 1e-4);
      }
    }
}

TEST_CASE("CUDA SKD and CIRKD on panels of any height, the default one included, equal the CPU op",
          "[cuda][pairwise_kd]") {
  using gkd::cuda::PairwiseShape;
  const PairwiseShape shape{2, 1100, 24, 12};
  for (const std::int64_t rows : {std::int64_t{-1}, std::int64_t{300}, std::int64_t{1100}}) {  // -1: default_panel_rows
    const gkd::cuda::PairwiseArgs args{.temperature = 0.5, .precise = true, .schedule = gkd::cuda::Schedule::Panels,
                                       .panel_rows = rows};
    check_against_cpu(Loss::Mse, shape, args, 1e-4);
    check_against_cpu(Loss::Kl, shape, args, 1e-4);
  }
}

TEST_CASE("CUDA pixel_pair_kl equals the CPU op", "[cuda][pairwise_kd]") {
  using gkd::cuda::PairwiseShape;
  for (const auto schedule : {gkd::cuda::Schedule::Tiles, gkd::cuda::Schedule::Panels})
    for (const PairwiseShape shape : {PairwiseShape{1, 1, 8, 8}, PairwiseShape{2, 37, 5, 11}, PairwiseShape{1, 64, 16, 32},
                                      PairwiseShape{2, 130, 64, 48}, PairwiseShape{3, 200, 33, 70},
                                      PairwiseShape{3, 400, 20, 12},    // tiles: 21 column tiles over 16 splits
                                      PairwiseShape{2, 600, 24, 12}}) {  // panels: 2 of 512 rows per image pair
      for (bool mean : {true, false}) {
        check_against_cpu(Loss::Kl, shape, {.temperature = 1.0, .mean = mean, .schedule = schedule}, 2e-2);
        check_against_cpu(Loss::Kl, shape, {.temperature = 0.5, .mean = mean, .precise = true, .schedule = schedule}, 1e-4);
        check_against_cpu(Loss::Kl, shape, {.temperature = 0.1, .mean = mean, .precise = true, .schedule = schedule}, 1e-4);
      }
    }
}

TEST_CASE("CUDA SKD and CIRKD with bf16 similarities on bf16 inputs equal the CPU op", "[cuda][pairwise_kd]") {
  using gkd::cuda::PairwiseShape;
  // One node: the exact SKD loss and gradient are 0 (a row's similarity with itself is 1), but each
  // bf16 self-similarity Σ ŝ_k²(1 + δ_k)², |δ_k| ≤ 2^-8 relative (a rounded unit row), is 1 within
  // 2·2^-8 = 7.8e-3, so the GPU loss (a_s − a_t)² may reach (1.6e-2)² = 2.4e-4, and its gradient,
  // 4(a_s − a_t)(I − ŝŝᵀ)ŝ_bf16 / ‖s‖ with ‖ŝ_bf16 − ŝ‖ ≤ 2^-8 and ‖s‖ ≈ 2.4 here, about 1e-4.
  for (const PairwiseShape shape : {PairwiseShape{1, 1, 8, 8}, PairwiseShape{2, 37, 5, 11}, PairwiseShape{2, 130, 64, 48},
                                    PairwiseShape{1, 1100, 8, 12}, PairwiseShape{2, 600, 24, 12}})
    for (bool mean : {true, false}) {
      if (shape.nodes == 1) check_against_cpu(Loss::Mse, shape, {.mean = mean, .bf16 = true}, 2e-4, 2.4e-4);
      else check_against_cpu(Loss::Mse, shape, {.mean = mean, .bf16 = true}, 8e-2);
      check_against_cpu(Loss::Kl, shape, {.temperature = 1.0, .mean = mean, .bf16 = true}, 8e-2);
      check_against_cpu(Loss::Kl, shape, {.temperature = 0.5, .mean = mean, .bf16 = true}, 8e-2);
    }
}

TEST_CASE("CUDA SKD and CIRKD at sizes small enough for compute-sanitizer", "[cuda][pairwise_kd][sanitize]") {
  // Both schedules, two panels of 512 rows (the last short), bf16: tools/gpu_check.sh runs the
  // sanitizers on this tag.
  using gkd::cuda::PairwiseShape;
  for (const auto schedule : {gkd::cuda::Schedule::Tiles, gkd::cuda::Schedule::Panels})
    for (const PairwiseShape shape : {PairwiseShape{2, 37, 5, 11}, PairwiseShape{1, 600, 8, 12}}) {
      check_against_cpu(Loss::Mse, shape, {.mean = true, .precise = true, .schedule = schedule}, 1e-4);
      check_against_cpu(Loss::Kl, shape, {.temperature = 0.5, .mean = true, .precise = true, .schedule = schedule},
                        1e-4);
    }
  for (bool kl : {false, true})
    check_against_cpu(kl ? Loss::Kl : Loss::Mse, PairwiseShape{1, 600, 8, 12},
                      {.temperature = 0.5, .mean = false, .bf16 = true}, 8e-2);
}

TEST_CASE("CUDA SKD and CIRKD with an all-zero student row and teacher row equal the CPU op", "[cuda][pairwise_kd]") {
  // Student row 3 (image 0) and teacher row N + 20 (image 1) zero. 3xTF32 similarities and their 1e-4:
  // the clamped row's gradient is one division of dŝ, accumulated like every other row's.
  using gkd::cuda::PairwiseShape;
  for (const auto schedule : {gkd::cuda::Schedule::Tiles, gkd::cuda::Schedule::Panels})
    for (const PairwiseShape shape : {PairwiseShape{2, 37, 5, 11}, PairwiseShape{2, 130, 64, 48}})
      for (bool mean : {true, false}) {
        check_against_cpu(Loss::Mse, shape, {.mean = mean, .precise = true, .schedule = schedule}, 1e-4, 1e-7, 3,
                          shape.nodes + 20);
        check_against_cpu(Loss::Kl, shape, {.temperature = 0.5, .mean = mean, .precise = true, .schedule = schedule},
                          1e-4, 1e-7, 3, shape.nodes + 20);
      }
}

TEST_CASE("CUDA pairwise_kd_backward scales the gradient", "[cuda][pairwise_kd]") {
  const std::vector<float> g{1.f, -2.f, 3.f, 0.5f, 7.f};
  DeviceBuffer<float> dg(g), factor(std::vector<float>{-0.5f});
  gkd::cuda::pairwise_kd_backward(factor.ptr, dg.ptr, 5);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  const auto out = dg.download(5);
  for (std::size_t i = 0; i < g.size(); ++i) REQUIRE(out[i] == -0.5f * g[i]);
}

TEST_CASE("CUDA pair-wise losses reject bad arguments", "[cuda][pairwise_kd]") {
  using gkd::cuda::PairwiseShape;
  const PairwiseShape shape{1, 10, 4, 4};
  const std::size_t bytes = gkd::cuda::pixel_pair_kl_workspace(shape);
  DeviceBuffer<float> s(40), t(40), loss(1);
  DeviceBuffer<char> ws(bytes);
  REQUIRE_THROWS_AS(gkd::cuda::similarity_mse_workspace(PairwiseShape{1, 0, 4, 4}), gkd::Error);
  REQUIRE_THROWS_WITH(gkd::cuda::pixel_pair_kl_workspace(shape, {.panel_rows = -1}), Catch::Contains("panel_rows"));
  REQUIRE_THROWS_WITH(gkd::cuda::similarity_mse_workspace(shape, {.schedule = gkd::cuda::Schedule::SmallGraphs}),
                      Catch::Contains("SmallGraphs"));
  REQUIRE_THROWS_WITH(gkd::cuda::similarity_mse_forward(s.ptr, t.ptr, shape, {.precise = true, .bf16 = true}, loss.ptr,
                                                        nullptr, ws.ptr, bytes),
                      Catch::Contains("bf16"));
  REQUIRE_THROWS_WITH(gkd::cuda::similarity_mse_forward(s.ptr, t.ptr, shape,
                                                        {.schedule = gkd::cuda::Schedule::Tiles, .bf16 = true}, loss.ptr,
                                                        nullptr, ws.ptr, bytes),
                      Catch::Contains("Panels"));
  REQUIRE_THROWS_AS(gkd::cuda::pixel_pair_kl_forward(s.ptr, t.ptr, shape, {.temperature = 0.0}, loss.ptr, nullptr, ws.ptr, bytes),
                    gkd::Error);
  REQUIRE_THROWS_AS(gkd::cuda::pixel_pair_kl_forward(s.ptr, t.ptr, shape, {}, loss.ptr, nullptr, ws.ptr, bytes - 1), gkd::Error);
  REQUIRE_THROWS_AS(gkd::cuda::similarity_mse_forward(nullptr, t.ptr, shape, {}, loss.ptr, nullptr, ws.ptr, bytes), gkd::Error);
  REQUIRE_THROWS_WITH(gkd::cuda::similarity_mse_forward(s.ptr, t.ptr, shape, {.eps = -1.0}, loss.ptr, nullptr, ws.ptr, bytes),
                      Catch::Contains("similarity_mse") && Catch::Contains("eps"));
}
