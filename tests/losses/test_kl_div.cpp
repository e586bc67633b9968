// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/losses/kl_div.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::flat;
using gkd::test::require_gradcheck;
using gkd::test::require_thread_count_invariant;
using In = std::vector<Tensor<double>>;

TEST_CASE("kl_div and distillation_kl gradcheck", "[gradcheck][kl_div]") {
  const auto logits = random({3, 4, 5}, 91);
  const auto p = softmax(random({3, 4, 5}, 92), 1);
  for (auto r : {KLReduction::Mean, KLReduction::Sum, KLReduction::None, KLReduction::BatchMean}) {
    require_gradcheck([&](const In& v) { return kl_div(v[0], p, r); }, {log_softmax(logits, 1)});
    require_gradcheck([&](const In& v) { return kl_div(v[0], log(p), r, true); }, {log_softmax(logits, 1)});
  }
  const auto s = random({2, 3, 2, 5}, 93, 2.0), t = random({2, 3, 2, 5}, 94, 2.0);  // > one block of pixels
  for (auto r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << reduction_name(r));
    require_gradcheck([r](const In& v) { return distillation_kl(v[0], v[1], 1.0, 1, r); }, {s, t});
    require_gradcheck([r](const In& v) { return distillation_kl(v[0], v[1], 4.0, 1, r); }, {s, t});
  }
  require_gradcheck([](const In& v) { return distillation_kl(v[0], v[1], 2.0, -1); }, {s, t});
  const auto teacher = random({4, 3}, 96);  // a constant teacher (classic KD)
  require_gradcheck([&](const In& v) { return distillation_kl(v[0], teacher, 3.0, 0); }, {random({4, 3}, 95)});
  require_gradcheck([](const In& v) { return distillation_kl(v[0].permute({0, 2, 3, 1}), v[1].permute({0, 2, 3, 1}), 2.0, 3); },
                    {s, t});
}

TEST_CASE("distillation_kl normalisation", "[kl_div]") {
  // [N, C] logits: equals T² · kl_div(log q, p, batchmean)
  const auto s = random({5, 7}, 97, 2.0), t = random({5, 7}, 98, 2.0);
  const double temp = 3.0;
  const auto ref = kl_div(log_softmax(s / temp, 1), softmax(t / temp, 1), KLReduction::BatchMean).item() * temp * temp;
  REQUIRE(distillation_kl(s, t, temp).item() == Approx(ref).epsilon(1e-12));
  // [N, C, H, W]: the mean over N·H·W positions of the per-position KL (times T²)
  const auto s4 = random({2, 3, 9, 10}, 99, 2.0), t4 = random({2, 3, 9, 10}, 100, 2.0);
  const auto per_position = sum(kl_div(log_softmax(s4 / 2.0, 1), softmax(t4 / 2.0, 1), KLReduction::None), {1});
  REQUIRE(distillation_kl(s4, t4, 2.0).item() == Approx(mean(per_position).item() * 4.0).epsilon(1e-12));
  gkd::test::require_close(distillation_kl(s4, t4, 2.0, 1, Reduction::None), per_position * 4.0, 1e-11);
  REQUIRE(distillation_kl(s4, s4, 5.0).item() == Approx(0.0).margin(1e-15));
  const auto big = Tensor<float>::from({1, 3}, {1000.f, -1000.f, 0.f});
  REQUIRE(std::isfinite(distillation_kl(big, -big, 1.f).item()));
  REQUIRE(kl_div(Tensor<double>::from({2}, {-1, -2}), Tensor<double>::from({2}, {0, 1}), KLReduction::Sum).item() == 2.0);
}

TEMPLATE_TEST_CASE("kl_div and distillation_kl match PyTorch", "[golden][kl_div]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("losses");
  const std::vector<bool> input_only{true, false};
  gkd::test::check_golden_case<T>(g, "kl_mean", [](const V& x) { return kl_div(x[0], x[1]); }, input_only);
  gkd::test::check_golden_case<T>(g, "kl_sum", [](const V& x) { return kl_div(x[0], x[1], Reduction::Sum); }, input_only);
  gkd::test::check_golden_case<T>(g, "kl_none", [](const V& x) { return kl_div(x[0], x[1], KLReduction::None); }, input_only);
  gkd::test::check_golden_case<T>(g, "kl_batchmean", [](const V& x) { return kl_div(x[0], x[1], KLReduction::BatchMean); }, input_only);
  gkd::test::check_golden_case<T>(g, "kl_log_target", [](const V& x) { return kl_div(x[0], x[1], KLReduction::BatchMean, true); }, input_only);
  gkd::test::check_golden_case<T>(g, "kd_2d_t1", [](const V& x) { return distillation_kl(x[0], x[1], T(1)); }, input_only);
  gkd::test::check_golden_case<T>(g, "kd_2d_t4", [](const V& x) { return distillation_kl(x[0], x[1], T(4)); }, input_only);
  gkd::test::check_golden_case<T>(g, "kd_seg_t2", [](const V& x) { return distillation_kl(x[0], x[1], T(2)); });
  gkd::test::check_golden_case<T>(g, "kd_seg_t4_sum", [](const V& x) { return distillation_kl(x[0], x[1], T(4), 1, Reduction::Sum); }, input_only);
  gkd::test::check_golden_case<T>(g, "kd_seg_t3_none", [](const V& x) { return distillation_kl(x[0], x[1], T(3), 1, Reduction::None); });
  gkd::test::check_golden_case<T>(g, "kd_last_t05", [](const V& x) { return distillation_kl(x[0], x[1], T(0.5), -1); }, input_only);
}

TEST_CASE("kl_div bad input raises gkd::Error naming op and shapes", "[errors][kl_div]") {
  const auto a = Tensor<float>::zeros({2, 3}), b = Tensor<float>::zeros({3, 2});
  REQUIRE_THROWS_WITH(kl_div(a, b), Catch::Contains("kl_div") && Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  REQUIRE_THROWS_WITH(kl_div(Tensor<float>::scalar(0), Tensor<float>::scalar(0), KLReduction::BatchMean), Catch::Contains("kl_div") && Catch::Contains("batchmean"));
  REQUIRE_THROWS_WITH(distillation_kl(a, b, 2.f), Catch::Contains("distillation_kl") && Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  REQUIRE_THROWS_WITH(distillation_kl(a, a, 0.f), Catch::Contains("distillation_kl") && Catch::Contains("temperature") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(distillation_kl(a, a, -1.f), Catch::Contains("distillation_kl") && Catch::Contains("temperature"));
  REQUIRE_THROWS_WITH(distillation_kl(a, a, 1.f, 2), Catch::Contains("distillation_kl") && Catch::Contains("dim 2"));
  REQUIRE_THROWS_WITH(distillation_kl(Tensor<float>::zeros({2, 0}), Tensor<float>::zeros({2, 0}), 1.f), Catch::Contains("distillation_kl") && Catch::Contains("[2, 0]"));
  REQUIRE_THROWS_WITH(distillation_kl(Tensor<float>::scalar(0), Tensor<float>::scalar(0), 1.f), Catch::Contains("distillation_kl") && Catch::Contains("[]"));
}

TEST_CASE("distillation_kl gives identical results for any thread count", "[parallel][kl_div]") {
  Generator gen(101);
  const auto s = randn<float>({2, 6, 60, 60}, gen, 0.f, 2.f), t = randn<float>({2, 6, 60, 60}, gen, 0.f, 2.f);
  require_thread_count_invariant([&] {
    auto sg = s.clone().requires_grad(), tg = t.clone().requires_grad();
    auto l = distillation_kl(sg, tg, 4.f);
    l.backward();
    return flat({l, sg.grad(), tg.grad()});
  });
  // the elementwise kl_div reduces with OpenMP too: equal up to summation order
  const auto lq = log_softmax(s, 1), p = softmax(t, 1);
  const int saved = num_threads();
  set_num_threads(1);
  const float serial = kl_div(lq, p, KLReduction::BatchMean).item();
  set_num_threads(2);
  const float parallel = kl_div(lq, p, KLReduction::BatchMean).item();
  set_num_threads(saved);
  REQUIRE(parallel == Approx(serial).epsilon(1e-6));
}
