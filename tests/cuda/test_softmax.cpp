// SPDX-License-Identifier: Apache-2.0
// Sum, softmax, log_softmax and cross_entropy on the GPU against the CPU, forward and backward.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_gpu_matches_cpu;

TEST_CASE("sum of all elements matches the CPU", "[cuda][reduce]") {
  require_gpu_matches_cpu<float>([](const auto& in) { return gkd::sum(in[0]); }, {random<float>({1000, 37}, 41)},
                                 1e-5, 1e-6, "sum float");
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::sum(in[0].transpose(0, 1)); },
                                  {random<double>({33, 17}, 42)}, 1e-12, 1e-12, "sum of a view");
  REQUIRE(gkd::sum(Tensor<float>::empty({0}).cuda()).item() == 0.f);
}

TEST_CASE("softmax and log_softmax match the CPU over every dim", "[cuda][reduce]") {
  const auto x = random<float>({2, 5, 7, 3}, 43, 3.f);
  for (std::int64_t d : {0, 1, 3, -1}) {
    require_gpu_matches_cpu<float>([d](const auto& in) { return gkd::softmax(in[0], d); }, {x}, 2e-5, 2e-5,
                                   "softmax dim " + std::to_string(d));
    require_gpu_matches_cpu<float>([d](const auto& in) { return gkd::log_softmax(in[0], d); }, {x}, 2e-5, 2e-5,
                                   "log_softmax dim " + std::to_string(d));
  }
  const auto xd = random<double>({4, 9}, 44);
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::log_softmax(in[0], 1); }, {xd}, 1e-12, 1e-12,
                                  "log_softmax float64");
}

TEST_CASE("cross_entropy matches the CPU with weights, ignore_index and every reduction", "[cuda][loss]") {
  const std::int64_t C = 5;
  const auto logits = random<float>({3, C, 6, 7}, 45, 2.f);
  gkd::Generator gen(46);
  auto target = Tensor<float>::empty({3, 6, 7});
  for (std::int64_t i = 0; i < target.numel(); ++i)
    target.data()[i] = gen.uniform() < 0.1 ? 255.f : static_cast<float>(static_cast<int>(gen.uniform(0, C)) % C);
  const auto weight = Tensor<float>::from({C}, {1.f, 0.5f, 2.f, 1.5f, 0.25f});
  for (auto reduction : {gkd::Reduction::Mean, gkd::Reduction::Sum, gkd::Reduction::None}) {
    const std::string name = "cross_entropy reduction " + std::to_string(static_cast<int>(reduction));
    require_gpu_matches_cpu<float>(
        [reduction](const auto& in) { return gkd::cross_entropy(in[0], in[1], in[2], 255, reduction); },
        {logits, target, weight}, 1e-5, 1e-5, name + " weighted", {1, 2});
    require_gpu_matches_cpu<float>(
        [reduction](const auto& in) { return gkd::cross_entropy(in[0], in[1], Tensor<float>(), 255, reduction); },
        {logits, target}, 1e-5, 1e-5, name, {1});
  }
  // [N, C] classification, float64
  const auto rows = random<double>({8, 4}, 47);
  const auto labels = Tensor<double>::from({8}, {0, 1, 2, 3, 3, 2, 1, 0});
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::cross_entropy(in[0], in[1]); }, {rows, labels},
                                  1e-12, 1e-12, "cross_entropy [N, C]", {1});
  // invalid targets are reported, not silently used
  auto bad = target.clone();
  bad.data()[3] = 7.f;
  REQUIRE_THROWS_WITH(gkd::cross_entropy(logits.cuda(), bad.cuda(), Tensor<float>(), 255),
                      Catch::Contains("not a class index"));
}

TEST_CASE("softmax, log_softmax and cross_entropy past the first grid-stride pass match the CPU", "[cuda][reduce]") {
  // These kernels run one thread per (outer, inner) position and loop over the class dim
  // (kernels/ops/reduce_kernels.cu); kernels/launch.hpp caps a launch at 132 * 32 blocks of 256 threads.
  // [8, 2, 384, 384] over dim 1 has 8 * 384 * 384 positions, more than that cap: the first threads take
  // a second position. (The target check of cross_entropy runs one thread per target, as many.)
  constexpr std::int64_t kGridThreads = 132 * 32 * 256;  // 1,081,344
  static_assert(std::int64_t{8} * 384 * 384 > kGridThreads);
  // softmax / log_softmax in float64 with the float64 tolerance above: the per-position math is the
  // small case's, a few ulp (1e-16) apart. Not float32: its 2e-5 was set on a few hundred elements, and the
  // backward y (g − Σ g y) loses up to ~1e-6 absolute (|g| ≈ 5) against a floor of ~0.02 in the tails of
  // 2.4 million elements, beyond 2e-5.
  const auto x = random<double>({8, 2, 384, 384}, 48, 3.0);
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::softmax(in[0], 1); }, {x}, 1e-12, 1e-12,
                                  "softmax over 1,179,648 positions");
  require_gpu_matches_cpu<double>([](const auto& in) { return gkd::log_softmax(in[0], 1); }, {x}, 1e-12, 1e-12,
                                  "log_softmax over 1,179,648 positions");
  // cross_entropy in float32, per-position map (no float sum of a million terms on the GPU): both devices
  // compute each position in double and round once to float (a float ulp, 6e-8), so the tolerance
  // of the small case above holds at any size. Every tenth target is ignored.
  const auto logits = random<float>({8, 2, 384, 384}, 49, 2.f);
  auto target = gkd::test::random_integers<float>({8, 384, 384}, 2, 50);
  for (std::int64_t i = 0; i < target.numel(); i += 10) target.data()[i] = 255.f;
  require_gpu_matches_cpu<float>(
      [](const auto& in) { return gkd::cross_entropy(in[0], in[1], Tensor<float>(), 255, gkd::Reduction::None); },
      {logits, target}, 1e-5, 1e-5, "cross_entropy map over 1,179,648 positions", {1});
}
