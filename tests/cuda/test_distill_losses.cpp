// SPDX-License-Identifier: Apache-2.0
// The fused distillation losses as autodiff ops on CUDA tensors (gkd/cuda/distill_losses.hpp): the
// ordinary ops dispatch to the kernels when given GPU tensors, and value and student gradient equal the
// CPU op on the same float32 inputs. Tolerances are the kernels' own (tests/cuda/test_graph_kd.cpp,
// test_pairwise_kd.cpp, test_cross_recon_kd.cpp): 1e-3 for 3xTF32 similarities, 1e-4 for DICD.
// Unsupported requests (float64, DICD's per-pixel map, mixed devices) raise gkd::Error.
// The baselines' feature losses that run on a GPU only in the pipeline (FSP, EMKD's region affinity and
// its IMD, attention transfer with p = 4 summed over positions) and DCGD's graph terms as the pipeline adds
// them (add_dcgd_terms, "kl" and "infonce") equal the CPU's, at the same tolerances.
// The losses composed of device ops on a GPU (mse, l1, BCE, distillation KL, Dice, normalize, cosine
// similarity, one_hot, and the AT / IFVD / CWD baselines built on them) equal their fused CPU kernels:
// 1e-9 in float64 (the same formulas), 1e-4 in float32 (float sums on the GPU, double on the CPU).
#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "compare.hpp"
#include "gkd/losses/attention_transfer.hpp"
#include "gkd/losses/bce.hpp"
#include "gkd/losses/channel_wise_kd.hpp"
#include "gkd/losses/cross_recon_kd.hpp"
#include "gkd/distill/dcgd.hpp"
#include "gkd/losses/dice.hpp"
#include "gkd/losses/fsp.hpp"
#include "gkd/losses/graph_kd.hpp"
#include "gkd/losses/ifvd.hpp"
#include "gkd/losses/kl_div.hpp"
#include "gkd/losses/pairwise_kd.hpp"
#include "gkd/losses/region_affinity.hpp"
#include "gkd/losses/regression.hpp"
#include "gkd/metrics/hausdorff.hpp"
#include "gkd/metrics/roc_auc.hpp"
#include "gkd/metrics/segmentation.hpp"

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

namespace {

template <gkd::Real T>
void require_composed_losses_match(double tol) {
  using R = gkd::Reduction;
  const auto x = random<T>({2, 3, 5, 6}, 51, T(2)), y = random<T>({2, 3, 5, 6}, 52, T(2));
  const auto labels = gkd::test::random_integers<T>({2, 5, 6}, 3, 53);
  auto prob = gkd::sigmoid(y);
  for (const R r : {R::Mean, R::Sum, R::None}) {
    const std::string name = " reduction " + std::string(gkd::reduction_name(r));
    require_gpu_matches_cpu<T>([r](const auto& in) { return gkd::mse_loss(in[0], in[1], r); }, {x, y}, tol, tol,
                               "mse_loss" + name);
    require_gpu_matches_cpu<T>([r](const auto& in) { return gkd::l1_loss(in[0], in[1], r); }, {x, y}, tol, tol,
                               "l1_loss" + name, {1});
    require_gpu_matches_cpu<T>(
        [r](const auto& in) { return gkd::binary_cross_entropy_with_logits(in[0], in[1], r, in[2], in[3]); },
        {x, prob, gkd::abs(random<T>({3, 1, 1}, 54)), random<T>({6}, 55)}, tol, tol, "bce" + name, {1, 2, 3});
    require_gpu_matches_cpu<T>([r](const auto& in) { return gkd::distillation_kl(in[0], in[1], T(2), 1, r); }, {x, y},
                               tol, tol, "distillation_kl" + name);
    require_gpu_matches_cpu<T>(
        [r](const auto& in) { return gkd::dice_loss(in[0], in[1], T(1), gkd::DiceActivation::Softmax, r); },
        {x, labels}, tol, tol, "dice_loss class indices" + name, {1});
    require_gpu_matches_cpu<T>(
        [r](const auto& in) { return gkd::dice_loss(in[0], in[1], T(0.5), gkd::DiceActivation::Sigmoid, r); },
        {x, prob}, tol, tol, "dice_loss dense" + name, {1});
  }
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::normalize(in[0], 1); }, {x}, tol, tol, "normalize");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::cosine_similarity(in[0], in[1], 1); },
                             {x, y.narrow(2, 0, 1)}, tol, tol, "cosine_similarity (broadcast)");
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::attention_transfer_loss(in[0], in[1]); },
                             {x, random<T>({2, 4, 10, 12}, 56)}, tol, tol, "attention_transfer_loss", {1});
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::ifvd_loss(in[0], in[1], in[2], {.classes = 3}); },
                             {x, random<T>({2, 4, 5, 6}, 57), labels}, tol, tol, "ifvd_loss", {1, 2});
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::channel_wise_kd_loss(in[0], in[1], T(4)); }, {x, y},
                             tol, tol, "channel_wise_kd_loss", {1});
  REQUIRE(gkd::one_hot(labels.cuda(), 3, 1).device().is_cuda());
  gkd::test::require_close(gkd::one_hot(labels.cuda(), 3, 1), gkd::one_hot(labels, 3, 1), 0, "one_hot");
}

}  // namespace

TEST_CASE("losses composed of device ops match their CPU kernels", "[cuda][losses]") {
  require_composed_losses_match<double>(1e-9);
  require_composed_losses_match<float>(1e-4);
  auto bad = gkd::test::random_integers<float>({2, 5, 6}, 3, 58);
  bad.data()[4] = 3.f;
  REQUIRE_THROWS_WITH(gkd::dice_loss(random<float>({2, 3, 5, 6}, 59).cuda(), bad.cuda()),
                      Catch::Contains("not a class index"));
  REQUIRE_THROWS_WITH(gkd::one_hot(bad.cuda(), 3), Catch::Contains("outside [0, 3)"));
  REQUIRE_THROWS_WITH(gkd::mse_loss(random<float>({4}, 60).cuda(), random<float>({4}, 61)),
                      Catch::Contains("CUDA"));
}

namespace {

/// FSP, region affinity (RAD) and attention transfer as EMKD's IMD (p = 4, summed over positions), composed
/// of device ops: the tolerances of require_composed_losses_match (1e-9 float64, same formulas; 1e-4
/// float32, float sums on the GPU). The features are independent, so no loss is a difference of nearly
/// equal terms that would magnify round-off.
template <gkd::Real T>
void require_feature_losses_match(double tol) {
  // FSP as in the pipeline (baselines.hpp): the second feature of each pair smaller than the first (adaptive
  // average pooling up to it), and once larger (pooled down) and once of the same size; teacher constant.
  const auto s1 = random<T>({2, 3, 4, 4}, 71), s2 = random<T>({2, 5, 2, 2}, 72);
  const auto t1 = random<T>({2, 3, 8, 8}, 73), t2 = random<T>({2, 5, 4, 4}, 74);
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::fsp_loss(in[0], in[1], in[2], in[3]); },
                             {s1, s2, t1, t2}, tol, tol, "fsp_loss (second features pooled up)", {2, 3});
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::fsp_loss(in[0], in[1], in[2], in[3]); },
                             {s1, random<T>({2, 5, 7, 9}, 75), t1, random<T>({2, 5, 8, 8}, 76)}, tol, tol,
                             "fsp_loss (pooled down, same size)", {2, 3});

  // RAD: the student at 8x8 (mask nearest-resized from 16x16), the teacher at the mask's 16x16 (no resize).
  // Sample 0: a random mask; sample 1: no foreground at all; sample 2: foreground on odd rows and columns
  // only, which nearest resizing to 8x8 (rows and columns 2i) drops, so the student sees no foreground
  // while the teacher does. An empty foreground gives r1 = 0 (EMKD's +1 smoothing) and c = cos(r0, 0) = 0
  // through the eps clamp, with a zero gradient (the mask multiplies it) on both devices.
  auto mask = gkd::test::random_integers<T>({3, 16, 16}, 2, 77);
  for (std::int64_t i = 0; i < 256; ++i) {
    mask.data()[256 + i] = T(0);
    const std::int64_t h = i / 16, w = i % 16;
    mask.data()[512 + i] = T(h % 2 == 1 && w % 2 == 1 && h < 9 && w < 11);
  }
  const auto fs = random<T>({3, 4, 8, 8}, 78), ft = random<T>({3, 6, 16, 16}, 79);
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::region_affinity_loss(in[0], in[1], in[2]); },
                             {fs, ft, mask}, tol, tol, "region_affinity_loss", {1, 2});
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::region_contrast(in[0], in[1]); }, {ft, mask}, tol, tol,
                             "region_contrast", {1});

  // IMD: p = 4 summed over positions, the student bilinearly resized to the teacher's size, and not.
  const gkd::AttentionTransferOptions imd{.p = 4.0, .sum_over_positions = true};
  require_gpu_matches_cpu<T>([&](const auto& in) { return gkd::attention_transfer_loss(in[0], in[1], imd); },
                             {random<T>({2, 3, 5, 6}, 80), random<T>({2, 4, 10, 12}, 81)}, tol, tol,
                             "attention_transfer_loss p = 4, summed over positions (resized)", {1});
  require_gpu_matches_cpu<T>([&](const auto& in) { return gkd::attention_transfer_loss(in[0], in[1], imd); },
                             {random<T>({2, 3, 5, 6}, 82), random<T>({2, 5, 5, 6}, 83)}, tol, tol,
                             "attention_transfer_loss p = 4, summed over positions", {1});
}

}  // namespace

TEST_CASE("FSP, region affinity and EMKD's attention transfer on the GPU match the CPU", "[cuda][losses]") {
  require_feature_losses_match<double>(1e-9);
  require_feature_losses_match<float>(1e-4);
}

TEST_CASE("DCGD's graph terms on the GPU match the CPU with either graph loss", "[cuda][graph_kd]") {
  // add_dcgd_terms as the student stage calls it: B = 4 samples, the anchor and K = 2 views of C = 16
  // (stacked sample-major on the device), intra (star graphs of 3) and inter (full graph over the 8 views)
  // weighted and summed; teacher vectors constant. float32 only (the graph kernels' precision), at the
  // graph kernels' tolerance (3xTF32 similarities: 1e-3, as above).
  std::vector<Tensor<float>> z;
  for (std::uint64_t v = 0; v < 6; ++v) z.push_back(random<float>({4, 16}, 90 + v));
  for (const char* loss : {"kl", "infonce"}) {
    gkd::distill::GkdConfig c;
    c.graph_loss = loss;
    c.intra = 1.0, c.inter = 0.5;
    require_gpu_matches_cpu<float>(
        [&c](const auto& in) {
          gkd::distill::LossTerms<float> terms;
          gkd::distill::add_dcgd_terms(terms, {in[0], in[1], in[2]}, {in[3], in[4], in[5]}, c);
          REQUIRE(terms.terms.size() == 2);
          return terms.total();
        },
        z, 1e-3, 1e-3, std::string("add_dcgd_terms, graph_loss = ") + loss, {3, 4, 5});
  }
}

namespace {

/// x [N, C, H, W] with the feature vectors (dim 1) at positions (n, h, w) set to zero, and the 0/1 mask of
/// those vectors (1 on them), of x's shape.
template <gkd::Real T>
std::pair<Tensor<T>, Tensor<T>> with_zero_rows(Tensor<T> x, const std::vector<std::array<std::int64_t, 3>>& rows) {
  const auto& s = x.shape();
  auto mask = Tensor<T>::zeros(s);
  for (const auto& [n, h, w] : rows)
    for (std::int64_t c = 0; c < s[1]; ++c) {
      const std::int64_t i = ((n * s[1] + c) * s[2] + h) * s[3] + w;
      x.data()[i] = T(0);
      mask.data()[i] = T(1);
    }
  return {x, mask};
}

/// Requires the GPU gradient `actual` to match the CPU's `expected` on the masked elements and, apart,
/// on the others: the gradients of zero rows are O(1/eps) (1e12 for normalize, 1e8 for cosine
/// similarity), and judged together with the O(1) rest against 1% of the largest value (require_close)
/// they would hide any error there.
template <gkd::Real T>
void require_close_apart(const Tensor<T>& actual, const Tensor<T>& expected, const Tensor<T>& mask, double tol,
                         const std::string& what) {
  REQUIRE(actual.device().is_cuda());
  const Tensor<T> a = actual.cpu(), keep = gkd::sub(Tensor<T>::ones(mask.shape()), mask);
  gkd::test::require_close(gkd::mul(a, mask), gkd::mul(expected, mask), tol, what + " on the zero rows");
  gkd::test::require_close(gkd::mul(a, keep), gkd::mul(expected, keep), tol, what + " on the other rows");
}

/// normalize and cosine_similarity along dim 1 with all-zero rows (the eps-clamped branch): the CPU's
/// fused kernels (include/gkd/ops/similarity.hpp) divide by max(‖x‖, eps) and send no gradient through a
/// clamped norm, as the GPU's device-op composition (detail::clamped_norm) does. Tolerances of
/// require_composed_losses_match: a zero row's value is 0 and its gradient one IEEE quotient by eps (by
/// eps·‖b‖ for cosine similarity) on both devices.
template <gkd::Real T>
void require_zero_rows_match(double tol) {
  const gkd::Shape shape{2, 3, 5, 6};
  // (1, 2, 5) is a zero row of both a and b
  const auto [a, zero_a] = with_zero_rows(random<T>(shape, 65, T(2)), {{0, 1, 2}, {1, 4, 0}, {1, 2, 5}});
  const auto [b, zero_b] = with_zero_rows(random<T>(shape, 66, T(2)), {{0, 3, 3}, {1, 2, 5}});
  {
    const auto xc = a.clone().requires_grad(), xg = a.cuda().requires_grad();
    const auto yc = gkd::normalize(xc, 1), yg = gkd::normalize(xg, 1);
    REQUIRE(yg.device().is_cuda());
    gkd::test::require_close(yg, yc, tol, "normalize with zero rows");
    const auto g = random<T>(shape, 67);
    yc.backward(g);
    yg.backward(g.cuda());
    require_close_apart(xg.grad(), xc.grad(), zero_a, tol, "normalize gradient");
  }
  {
    const auto ac = a.clone().requires_grad(), bc = b.clone().requires_grad();
    const auto ag = a.cuda().requires_grad(), bg = b.cuda().requires_grad();
    const auto yc = gkd::cosine_similarity(ac, bc, 1), yg = gkd::cosine_similarity(ag, bg, 1);
    REQUIRE(yg.device().is_cuda());
    gkd::test::require_close(yg, yc, tol, "cosine_similarity with zero rows");
    const auto g = random<T>(yc.shape(), 68);
    yc.backward(g);
    yg.backward(g.cuda());
    require_close_apart(ag.grad(), ac.grad(), zero_a, tol, "cosine_similarity gradient of a");
    require_close_apart(bg.grad(), bc.grad(), zero_b, tol, "cosine_similarity gradient of b");
  }
}

}  // namespace

TEST_CASE("normalize and cosine_similarity on the GPU clamp zero rows like the CPU", "[cuda][losses]") {
  require_zero_rows_match<double>(1e-9);
  require_zero_rows_match<float>(1e-4);
}

TEST_CASE("metrics read GPU tensors through host copies", "[cuda][metrics]") {
  const auto score = gkd::sigmoid(random<float>({9, 11}, 62)), fov = gkd::test::random_integers<float>({9, 11}, 2, 63);
  const auto target = gkd::test::random_integers<float>({9, 11}, 2, 64);
  const auto on_gpu = gkd::metrics::confusion(score.cuda(), target.cuda(), fov.cuda()),
             on_cpu = gkd::metrics::confusion(score, target, fov);
  CHECK((on_gpu.tp == on_cpu.tp && on_gpu.fp == on_cpu.fp && on_gpu.tn == on_cpu.tn && on_gpu.fn == on_cpu.fn));
  gkd::metrics::RocAucAccumulator gpu_auc, cpu_auc;
  gpu_auc.add(score.cuda(), target.cuda(), fov.cuda());
  cpu_auc.add(score, target, fov);
  CHECK(gpu_auc.value() == cpu_auc.value());
  const auto mask = gkd::gt(score, gkd::Tensor<float>::scalar(0.5f));
  CHECK(gkd::metrics::hausdorff(mask.cuda(), target.cuda()).hd95 == gkd::metrics::hausdorff(mask, target).hd95);
}
