// SPDX-License-Identifier: Apache-2.0
// kl_div, smooth_l1_loss, focal_loss and nll_loss on the GPU (composed of device ops) against their
// fused CPU kernels on the same random inputs: value and every differentiable input's gradient, for
// each reduction, float32 and float64. Tolerances: 1e-9 in float64 (the same formulas, another order
// of operations), 1e-4 in float32 (the GPU computes in float, the CPU kernels partly in double).
// Covered edge cases: kl_div targets with exact zeros (xlogy) and log targets; smooth_l1 at |d| == beta
// and with beta = 0; focal with gamma 0, 0.5 and 2, class weights and ignored positions; nll with
// class weights, ignore_index and [N, C] input; out-of-range targets refused.
#include <catch2/catch.hpp>

#include "compare.hpp"
#include "gkd/losses/cross_entropy.hpp"
#include "gkd/losses/focal.hpp"
#include "gkd/losses/kl_div.hpp"
#include "gkd/losses/regression.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;
using R = gkd::Reduction;

namespace {

/// Class indices in [0, classes) stored as T, with every `ignore_every`-th position set to `ignored`.
template <gkd::Real T>
Tensor<T> labels(const gkd::Shape& shape, std::int64_t classes, std::uint64_t seed, std::int64_t ignore_every = 0,
                 std::int64_t ignored = -100) {
  auto t = gkd::test::random_integers<T>(shape, classes, seed);
  if (ignore_every > 0)
    for (std::int64_t i = 0; i < t.numel(); i += ignore_every) t.data()[i] = static_cast<T>(ignored);
  return t;
}

std::string name_of(R r) { return " reduction " + std::string(gkd::reduction_name(r)); }

template <gkd::Real T>
void check_kl_div(double tol) {
  using K = gkd::KLReduction;
  const auto x = random<T>({3, 4, 2, 5}, 301, T(2));
  auto p = gkd::softmax(random<T>({3, 4, 2, 5}, 302, T(2)), 1);
  for (std::int64_t i = 0; i < p.numel(); i += 7) p.data()[i] = T(0);  // exact zeros: xlogy's branch
  const auto log_p = gkd::log_softmax(random<T>({3, 4, 2, 5}, 303), 1);
  const std::vector<std::pair<K, std::string>> reductions = {
      {K::None, "none"}, {K::Mean, "mean"}, {K::Sum, "sum"}, {K::BatchMean, "batchmean"}};
  for (const auto& entry : reductions) {
    const K r = entry.first;
    const std::string& name = entry.second;
    require_gpu_matches_cpu<T>([r](const auto& in) { return gkd::kl_div(gkd::log_softmax(in[0], 1), in[1], r); },
                               {x, p}, tol, tol, "kl_div " + name, {1});
    require_gpu_matches_cpu<T>(
        [r](const auto& in) { return gkd::kl_div(gkd::log_softmax(in[0], 1), in[1], r, /*log_target=*/true); },
        {x, log_p}, tol, tol, "kl_div log_target " + name, {1});
  }
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::kl_div(in[0], in[1], R::Sum); },
                             {x.reshape({12, 10}), p.reshape({12, 10})}, tol, tol, "kl_div with the shared Sum", {1});
}

template <gkd::Real T>
void check_smooth_l1(double tol) {
  auto x = random<T>({4, 3, 6}, 311, T(2));
  auto y = random<T>({4, 3, 6}, 312, T(2));
  for (std::int64_t i = 0; i < 6; ++i) {  // |x − y| == beta (1) exactly, both signs
    y.data()[i] = T(0.25);
    x.data()[i] = i % 2 ? T(1.25) : T(-0.75);
  }
  for (const T beta : {T(1), T(0.3), T(0)}) {
    for (const R r : {R::Mean, R::Sum, R::None}) {
      require_gpu_matches_cpu<T>([r, beta](const auto& in) { return gkd::smooth_l1_loss(in[0], in[1], r, beta); },
                                 {x, y}, tol, tol, "smooth_l1_loss beta " + std::to_string(beta) + name_of(r));
    }
  }
}

template <gkd::Real T>
void check_focal(double tol) {
  const auto logits = random<T>({2, 4, 3, 5}, 321, T(2));
  const auto target = labels<T>({2, 3, 5}, 4, 322);
  const auto ignored = labels<T>({2, 3, 5}, 4, 323, 4, 255);
  const auto alpha = Tensor<T>::from({4}, {T(0.25), T(1), T(0.5), T(2)});
  for (const T gamma : {T(0), T(0.5), T(2)}) {
    for (const R r : {R::Mean, R::Sum, R::None}) {
      const std::string name = "focal_loss gamma " + std::to_string(gamma) + name_of(r);
      require_gpu_matches_cpu<T>(
          [gamma, r](const auto& in) { return gkd::focal_loss(in[0], in[1], gamma, Tensor<T>(), -100, r); },
          {logits, target}, tol, tol, name, {1});
      require_gpu_matches_cpu<T>(
          [gamma, r](const auto& in) { return gkd::focal_loss(in[0], in[1], gamma, in[2], 255, r); },
          {logits, ignored, alpha}, tol, tol, name + " with alpha and ignored positions", {1, 2});
    }
  }
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::focal_loss(in[0], in[1], T(2)); },
                             {random<T>({6, 3}, 324), labels<T>({6}, 3, 325)}, tol, tol, "focal_loss on [N, C]", {1});
}

template <gkd::Real T>
void check_nll(double tol) {
  const auto logits = random<T>({2, 4, 3, 5}, 331, T(2));
  const auto target = labels<T>({2, 3, 5}, 4, 332);
  const auto ignored = labels<T>({2, 3, 5}, 4, 333, 3, 255);
  const auto weight = Tensor<T>::from({4}, {T(0.5), T(2), T(1), T(0.25)});
  for (const R r : {R::Mean, R::Sum, R::None}) {
    const std::string name = "nll_loss" + name_of(r);
    require_gpu_matches_cpu<T>(
        [r](const auto& in) { return gkd::nll_loss(gkd::log_softmax(in[0], 1), in[1], Tensor<T>(), -100, r); },
        {logits, target}, tol, tol, name, {1});
    require_gpu_matches_cpu<T>(
        [r](const auto& in) { return gkd::nll_loss(gkd::log_softmax(in[0], 1), in[1], in[2], 255, r); },
        {logits, ignored, weight}, tol, tol, name + " with weights and ignored positions", {1, 2});
    require_gpu_matches_cpu<T>([r](const auto& in) { return gkd::nll_loss(in[0], in[1], Tensor<T>(), -100, r); },
                               {random<T>({7, 5}, 334), labels<T>({7}, 5, 335)}, tol, tol, name + " on [N, C]", {1});
  }
}

constexpr double kFloatTol = 1e-4, kDoubleTol = 1e-9;

}  // namespace

TEST_CASE("kl_div on the GPU matches the CPU", "[cuda][losses]") {
  check_kl_div<float>(kFloatTol);
  check_kl_div<double>(kDoubleTol);
}

TEST_CASE("smooth_l1_loss on the GPU matches the CPU", "[cuda][losses]") {
  check_smooth_l1<float>(kFloatTol);
  check_smooth_l1<double>(kDoubleTol);
}

TEST_CASE("focal_loss on the GPU matches the CPU", "[cuda][losses]") {
  check_focal<float>(kFloatTol);
  check_focal<double>(kDoubleTol);
}

TEST_CASE("nll_loss on the GPU matches the CPU", "[cuda][losses]") {
  check_nll<float>(kFloatTol);
  check_nll<double>(kDoubleTol);
}

TEST_CASE("the GPU class-index losses refuse bad targets like the CPU", "[cuda][losses]") {
  const auto logits = random<float>({2, 3, 4}, 341).cuda();
  auto bad = labels<float>({2, 4}, 3, 342);
  bad.data()[5] = 3;
  REQUIRE_THROWS_WITH(gkd::nll_loss(logits, bad.cuda()), Catch::Contains("nll_loss") && Catch::Contains("holds 3"));
  REQUIRE_THROWS_WITH(gkd::focal_loss(logits, bad.cuda()), Catch::Contains("focal_loss") && Catch::Contains("holds 3"));
  REQUIRE_THROWS_WITH(gkd::focal_loss(logits, labels<float>({2, 4}, 3, 343).cuda(), -1.f),
                      Catch::Contains("gamma"));
  REQUIRE_THROWS_WITH(gkd::smooth_l1_loss(logits, logits, R::Mean, -1.f), Catch::Contains("beta"));
}
