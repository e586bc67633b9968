// SPDX-License-Identifier: Apache-2.0
// The fused distillation losses as autodiff ops on CUDA tensors (gkd/cuda/distill_losses.hpp): the
// ordinary ops dispatch to the kernels when given GPU tensors, and value and student gradient equal the
// CPU op on the same float32 inputs. Tolerances are the kernels' own (tests/cuda/test_graph_kd.cpp,
// test_pairwise_kd.cpp, test_cross_recon_kd.cpp): 1e-3 for 3xTF32 similarities, 1e-4 for DICD.
// Unsupported requests (float64, DICD's per-pixel map, mixed devices) raise gkd::Error.
#include <catch2/catch.hpp>

#include "compare.hpp"
#include "gkd/losses/cross_recon_kd.hpp"
#include "gkd/losses/graph_kd.hpp"
#include "gkd/losses/pairwise_kd.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

TEST_CASE("graph_kd_loss and graph_infonce_loss dispatch to the CUDA kernels", "[cuda][graph_kd]") {
  struct Case {
    std::int64_t n, cs, ct;
    gkd::GraphMask mask;
    gkd::Reduction reduction;
  };
  for (const Case& c : {Case{80, 64, 64, gkd::GraphMask::star(5), gkd::Reduction::Mean},
                        Case{64, 48, 48, gkd::GraphMask::full(), gkd::Reduction::Sum},
                        Case{100, 32, 32, gkd::GraphMask::block_diagonal(4), gkd::Reduction::None}}) {
    gkd::GraphKDOptions o;
    o.temperature = 0.5;
    o.mask = c.mask;
    o.reduction = c.reduction;
    const auto s = random<float>({c.n, c.cs}, 11), t = random<float>({c.n, c.ct}, 12);
    require_gpu_matches_cpu<float>([&](const auto& in) { return gkd::graph_kd_loss(in[0], in[1], o); }, {s, t}, 1e-3,
                                   1e-3, "graph_kd_loss " + std::string(gkd::graph_mask_name(c.mask.kind)), {1});
    require_gpu_matches_cpu<float>([&](const auto& in) { return gkd::graph_infonce_loss(in[0], in[1], o); }, {s, t},
                                   1e-3, 1e-3, "graph_infonce_loss " + std::string(gkd::graph_mask_name(c.mask.kind)),
                                   {1});
  }
}

TEST_CASE("similarity_mse and pixel_pair_kl dispatch to the CUDA kernels", "[cuda][pairwise_kd]") {
  const auto s = random<float>({2, 130, 24}, 21), t = random<float>({2, 130, 40}, 22);
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::similarity_mse(in[0], in[1]); }, {s, t}, 1e-3, 1e-3,
                                 "similarity_mse", {1});
  gkd::PixelPairKlOptions o;
  o.temperature = 0.5;
  o.reduction = gkd::Reduction::Sum;
  require_gpu_matches_cpu<float>([&](const auto& in) { return gkd::pixel_pair_kl(in[0], in[1], o); }, {s, t}, 1e-3,
                                 1e-3, "pixel_pair_kl", {1});
}

TEST_CASE("cross_recon_kd dispatches to the CUDA kernel", "[cuda][cross_recon_kd]") {
  const auto t = random<float>({3, 2, 17, 19}, 31, 3.0f), x1 = random<float>({3, 2, 17, 19}, 32, 3.0f),
             x2 = random<float>({3, 2, 17, 19}, 33, 3.0f);
  for (const auto reduction : {gkd::Reduction::Mean, gkd::Reduction::Sum}) {
    const gkd::CrossReconKdOptions o{.temperature = 2.0, .reduction = reduction};
    require_gpu_matches_cpu<float>([&](const auto& in) { return gkd::cross_recon_kd(in[0], in[1], in[2], o); },
                                   {t, x1, x2}, 1e-5, 1e-4, "cross_recon_kd", {0});
  }
}

TEST_CASE("the CUDA distillation losses refuse what the kernels do not do", "[cuda][errors]") {
  const auto s = random<double>({8, 4}, 41).cuda(), t = random<double>({8, 4}, 42).cuda();
  REQUIRE_THROWS_WITH(gkd::graph_kd_loss(s, t), Catch::Contains("float32"));
  const auto sf = random<float>({8, 4}, 43);
  REQUIRE_THROWS_WITH(gkd::graph_kd_loss(sf.cuda(), sf), Catch::Contains("one CUDA device"));
  const auto logits = random<float>({1, 2, 4, 4}, 44).cuda();
  REQUIRE_THROWS_WITH(gkd::cross_recon_kd(logits, logits, logits, {.reduction = gkd::Reduction::None}),
                      Catch::Contains("CPU-only"));
}
