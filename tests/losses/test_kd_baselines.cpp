// SPDX-License-Identifier: Apache-2.0
// The KD baseline losses of issue 5: attention transfer / IMD, FSP, IFVD, CWD and EMKD's RAD.
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/losses/attention_transfer.hpp"
#include "gkd/losses/channel_wise_kd.hpp"
#include "gkd/losses/fsp.hpp"
#include "gkd/losses/ifvd.hpp"
#include "gkd/losses/region_affinity.hpp"

using namespace gkd;
using gkd::test::labels;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

namespace {

/// Runs `loss(student, teacher)` with both requiring a gradient: the student gets one, the teacher none.
template <class F>
void require_teacher_detached(F loss, const Tensor<double>& student, const Tensor<double>& teacher) {
  auto s = student.clone().requires_grad(), t = teacher.clone().requires_grad();
  loss(s, t).backward();
  REQUIRE(s.grad().defined());
  REQUIRE(!t.grad().defined());
}

}  // namespace

TEST_CASE("KD baseline losses gradcheck w.r.t. the student", "[gradcheck][kd_baselines]") {
  const auto s = random({2, 3, 4, 5}, 11), t = random({2, 4, 4, 5}, 12, 2.0);
  require_gradcheck([&](const In& v) { return attention_transfer_loss(v[0], t); }, {s});
  require_gradcheck([&](const In& v) { return attention_transfer_loss(v[0], t, {.p = 3.0}); }, {s});
  require_gradcheck([&](const In& v) { return attention_transfer_loss(v[0], random({2, 2, 7, 9}, 13), {.p = 4.0, .sum_over_positions = true}); },
                    {s});  // student resized 4x5 -> 7x9
  require_gradcheck([](const In& v) { return attention_map(v[0], 2.0); }, {s});

  require_gradcheck([](const In& v) { return fsp_matrix(v[0], v[1]); }, {random({2, 3, 4, 4}, 14), random({2, 2, 6, 5}, 15)});
  const auto t1 = random({2, 3, 3, 3}, 16), t2 = random({2, 2, 3, 3}, 17);
  require_gradcheck([&](const In& v) { return fsp_loss(v[0], v[1], t1, t2); }, {random({2, 3, 4, 4}, 18), random({2, 2, 2, 2}, 19)});

  const auto lab = labels({2, 8, 10}, 3, 20);
  require_gradcheck([&](const In& v) { return ifv_map(v[0], lab, {.classes = 3}); }, {s});
  require_gradcheck([&](const In& v) { return ifvd_loss(v[0], t, lab, {.classes = 3}); }, {s});
  require_gradcheck([&](const In& v) { return ifvd_loss(v[0], random({2, 2, 8, 10}, 21), lab, {.classes = 3}); }, {s});

  const auto ts = random({2, 3, 4, 5}, 22, 2.0);
  require_gradcheck([&](const In& v) { return channel_wise_kd_loss(v[0], ts); }, {random({2, 3, 4, 5}, 23, 2.0)});
  require_gradcheck([&](const In& v) { return channel_wise_kd_loss(v[0], ts, 1.0); }, {random({2, 3, 4, 5}, 23, 2.0)});

  const auto mask = labels({2, 8, 10}, 2, 24);
  require_gradcheck([&](const In& v) { return region_contrast(v[0], mask); }, {s});
  require_gradcheck([&](const In& v) { return region_affinity_loss(v[0], t, mask); }, {s});
  require_gradcheck([&](const In& v) { return region_affinity_loss(v[0], random({2, 5, 8, 10}, 25), mask, {.background_smooth = 1.0}); },
                    {s});
}

TEST_CASE("KD baseline losses send no gradient to the teacher", "[kd_baselines]") {
  const auto s = random({2, 3, 4, 5}, 31), t = random({2, 4, 4, 5}, 32);
  const auto lab = labels({2, 4, 5}, 2, 33);
  require_teacher_detached([](auto a, auto b) { return attention_transfer_loss(a, b); }, s, t);
  require_teacher_detached([&](auto a, auto b) { return ifvd_loss(a, b, lab); }, s, t);
  require_teacher_detached([&](auto a, auto b) { return region_affinity_loss(a, b, lab); }, s, t);
  require_teacher_detached([](auto a, auto b) { return channel_wise_kd_loss(a, b); }, s, random({2, 3, 4, 5}, 34));
  auto s1 = random({2, 3, 4, 5}, 35).requires_grad(), s2 = random({2, 2, 4, 5}, 36).requires_grad();
  auto t1 = random({2, 3, 4, 5}, 37).requires_grad(), t2 = random({2, 2, 4, 5}, 38).requires_grad();
  fsp_loss(s1, s2, t1, t2).backward();
  REQUIRE((s1.grad().defined() && s2.grad().defined()));
  REQUIRE((!t1.grad().defined() && !t2.grad().defined()));
}

TEST_CASE("KD baseline losses on hand-computed cases", "[kd_baselines]") {
  // identical student and teacher: every loss is 0
  const auto f = random({2, 3, 4, 4}, 41);
  const auto lab = labels({2, 8, 8}, 2, 42);
  REQUIRE(attention_transfer_loss(f, f).item() == 0.0);
  REQUIRE(fsp_loss(f, f, f, f).item() == 0.0);
  REQUIRE(ifvd_loss(f, f, lab).item() == 0.0);
  REQUIRE(channel_wise_kd_loss(f, f).item() == Approx(0.0).margin(1e-15));
  REQUIRE(region_affinity_loss(f, f, lab).item() == 0.0);

  // AT, one 1x1x2x2 channel [[1, 2], [3, 4]] against a constant teacher: a_s = [1, 4, 9, 16] / √354, a_t = ½
  const auto one = Tensor<double>::from({1, 1, 2, 2}, {1, 2, 3, 4}), flat = Tensor<double>::ones({1, 1, 2, 2});
  double at = 0;
  for (double e : {1.0, 4.0, 9.0, 16.0}) at += std::pow(e / std::sqrt(354.0) - 0.5, 2) / 4;
  REQUIRE(attention_transfer_loss(one, flat).item() == Approx(at).epsilon(1e-14));
  REQUIRE(attention_transfer_loss(one, flat, {.sum_over_positions = true}).item() == Approx(4 * at).epsilon(1e-14));
  // p = 1 on negative values: |F| is used
  REQUIRE(attention_transfer_loss(-one, flat, {.p = 1.0}).item() ==
          Approx(attention_transfer_loss(one, flat, {.p = 1.0}).item()).epsilon(1e-14));

  // FSP: G([1, 2, 3, 4], [1, 1, 1, 1]) = 10 / 4; teacher G = 0
  REQUIRE(fsp_matrix(one, flat).item() == Approx(2.5).epsilon(1e-14));
  REQUIRE(fsp_loss(one, flat, Tensor<double>::zeros({1, 1, 2, 2}), flat).item() == Approx(6.25).epsilon(1e-14));
  // adaptive pooling of the second feature: a constant 1x1x4x4 pools to the same constant
  REQUIRE(fsp_matrix(one, Tensor<double>::full({1, 1, 4, 4}, 2.0)).item() == Approx(5.0).epsilon(1e-14));

  // IFVD, two pixels of one class: student (1, 0), (0, 1) -> μ = (½, ½), cos = 1/√2; teacher (1, 0), (2, 0) -> cos = 1
  const auto fs = Tensor<double>::from({1, 2, 1, 2}, {1, 0, 0, 1}), ft = Tensor<double>::from({1, 2, 1, 2}, {1, 2, 0, 0});
  const auto same = Tensor<double>::zeros({1, 1, 2}), split = Tensor<double>::from({1, 1, 2}, {0, 1});
  gkd::test::require_close(ifv_map(fs, same), Tensor<double>::full({1, 1, 2}, 1 / std::sqrt(2.0)), 1e-14);
  REQUIRE(ifvd_loss(fs, ft, same).item() == Approx(std::pow(1 / std::sqrt(2.0) - 1, 2)).epsilon(1e-14));
  REQUIRE(ifvd_loss(fs, ft, split).item() == Approx(0.0).margin(1e-15));  // every pixel is its own prototype

  // CWD, one channel of two positions: φ(t) = (¼, ¾), φ(s) = (½, ½); τ² · KL / (B·C)
  const double kl = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  const auto zero = Tensor<double>::zeros({1, 1, 1, 2});
  REQUIRE(channel_wise_kd_loss(zero, Tensor<double>::from({1, 1, 1, 2}, {0, std::log(3.0)}), 1.0).item() ==
          Approx(kl).epsilon(1e-13));
  REQUIRE(channel_wise_kd_loss(zero, Tensor<double>::from({1, 1, 1, 2}, {0, 2 * std::log(3.0)}), 2.0).item() ==
          Approx(4 * kl).epsilon(1e-13));
  // two identical channels average to the same value
  REQUIRE(channel_wise_kd_loss(Tensor<double>::zeros({1, 2, 1, 2}),
                               Tensor<double>::from({1, 2, 1, 2}, {0, std::log(3.0), 0, std::log(3.0)}), 1.0)
              .item() == Approx(kl).epsilon(1e-13));

  // RAD, 1x2x2x2 with the top-left pixel foreground: r1 = (1, 0) / 2, r0 = (1, 3) / 3 -> c = 1/√10;
  // a teacher of ones: r1 = (½, ½), r0 = (1, 1) -> c = 1
  const auto rf = Tensor<double>::from({1, 2, 2, 2}, {1, 0, 0, 1, 0, 1, 1, 1});
  const auto rmask = Tensor<double>::from({1, 2, 2}, {1, 0, 0, 0});
  REQUIRE(region_contrast(rf, rmask).item() == Approx(1 / std::sqrt(10.0)).epsilon(1e-14));
  REQUIRE(region_affinity_loss(rf, Tensor<double>::ones({1, 3, 2, 2}), rmask).item() ==
          Approx(std::pow(1 / std::sqrt(10.0) - 1, 2)).epsilon(1e-14));
  // the mask is nearest-resized to each feature: a 4x4 mask of 2x2 blocks on a 2x2 feature is the same as above
  const auto big_mask = upsample_nearest2d(rmask.reshape({1, 1, 2, 2}), Size2(4, 4)).reshape({1, 4, 4});
  REQUIRE(region_contrast(rf, big_mask).item() == Approx(1 / std::sqrt(10.0)).epsilon(1e-14));
}

TEMPLATE_TEST_CASE("KD baseline losses match PyTorch", "[golden][kd_baselines]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("kd_baselines");
  const std::vector<bool> student{true, false}, student_labels{true, false, false}, fsp_student{true, true, false, false};
  gkd::test::check_golden_case<T>(g, "at_p2", [](const V& x) { return attention_transfer_loss(x[0], x[1]); }, student);
  gkd::test::check_golden_case<T>(g, "at_p3", [](const V& x) { return attention_transfer_loss(x[0], x[1], {.p = 3.0}); }, student);
  gkd::test::check_golden_case<T>(
      g, "at_resize_p4_sum", [](const V& x) { return attention_transfer_loss(x[0], x[1], {.p = 4.0, .sum_over_positions = true}); },
      student);
  gkd::test::check_golden_case<T>(g, "fsp_same_size", [](const V& x) { return fsp_loss(x[0], x[1], x[2], x[3]); }, fsp_student);
  gkd::test::check_golden_case<T>(g, "fsp_pooled", [](const V& x) { return fsp_loss(x[0], x[1], x[2], x[3]); }, fsp_student);
  gkd::test::check_golden_case<T>(g, "ifvd_3_classes", [](const V& x) { return ifvd_loss(x[0], x[1], x[2], {.classes = 3}); },
                                  student_labels);
  gkd::test::check_golden_case<T>(g, "ifvd_resize", [](const V& x) { return ifvd_loss(x[0], x[1], x[2]); }, student_labels);
  gkd::test::check_golden_case<T>(g, "cwd_t4", [](const V& x) { return channel_wise_kd_loss(x[0], x[1]); }, student);
  gkd::test::check_golden_case<T>(g, "cwd_t1", [](const V& x) { return channel_wise_kd_loss(x[0], x[1], T(1)); }, student);
  gkd::test::check_golden_case<T>(g, "rad_default", [](const V& x) { return region_affinity_loss(x[0], x[1], x[2]); },
                                  student_labels);
  gkd::test::check_golden_case<T>(
      g, "rad_smooth_both", [](const V& x) { return region_affinity_loss(x[0], x[1], x[2], {.background_smooth = 1.0}); },
      student_labels);
}

TEST_CASE("KD baseline losses reject bad input with gkd::Error naming the op", "[errors][kd_baselines]") {
  using F = Tensor<float>;
  const auto f = F::zeros({2, 3, 4, 4}), f3 = F::zeros({2, 3, 4}), other_batch = F::zeros({3, 3, 4, 4});
  const auto mask = F::zeros({2, 8, 8});
  using Catch::Contains;

  REQUIRE_THROWS_AS(attention_transfer_loss(f3, f), gkd::Error);
  REQUIRE_THROWS_WITH(attention_transfer_loss(f3, f), Contains("attention_transfer_loss") && Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(attention_transfer_loss(f, other_batch),
                      Contains("attention_transfer_loss") && Contains("[2, 3, 4, 4]") && Contains("[3, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(attention_transfer_loss(f, f, {.p = 0.0}), Contains("attention_transfer_loss") && Contains("p must"));
  REQUIRE_THROWS_WITH(attention_transfer_loss(F::zeros({2, 0, 4, 4}), f), Contains("attention_transfer_loss") && Contains("empty"));
  REQUIRE_THROWS_WITH(attention_map(f3), Contains("attention_map") && Contains("[2, 3, 4]"));

  REQUIRE_THROWS_AS(fsp_loss(f, f, F::zeros({2, 4, 4, 4}), f), gkd::Error);
  REQUIRE_THROWS_WITH(fsp_loss(f, f, F::zeros({2, 4, 4, 4}), f),
                      Contains("fsp_loss") && Contains("[2, 3, 3]") && Contains("[2, 4, 3]"));
  REQUIRE_THROWS_WITH(fsp_matrix(f, f3), Contains("fsp_matrix") && Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(fsp_matrix(f, other_batch), Contains("fsp_matrix") && Contains("batch"));

  REQUIRE_THROWS_AS(ifvd_loss(f, f, F::zeros({2, 8})), gkd::Error);
  REQUIRE_THROWS_WITH(ifvd_loss(f, f, F::zeros({2, 8})), Contains("ifvd_loss") && Contains("[2, 8]"));
  REQUIRE_THROWS_WITH(ifvd_loss(f, f, F::full({2, 8, 8}, 2.f)), Contains("ifvd_loss") && Contains("outside [0, 2)"));
  REQUIRE_THROWS_WITH(ifvd_loss(f, f, F::full({2, 8, 8}, 0.5f)), Contains("ifvd_loss") && Contains("non-integer"));
  REQUIRE_THROWS_WITH(ifvd_loss(f, f, F::zeros({3, 8, 8})), Contains("ifvd_loss") && Contains("[3, 8, 8]"));
  REQUIRE_THROWS_WITH(ifvd_loss(f, other_batch, mask), Contains("ifvd_loss") && Contains("[3, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(ifvd_loss(f, f, mask, {.classes = 0}), Contains("ifvd_loss") && Contains("classes"));
  REQUIRE_THROWS_WITH(ifv_map(f3, mask), Contains("ifv_map") && Contains("[2, 3, 4]"));

  REQUIRE_THROWS_AS(channel_wise_kd_loss(f, F::zeros({2, 3, 4, 5})), gkd::Error);
  REQUIRE_THROWS_WITH(channel_wise_kd_loss(f, F::zeros({2, 3, 4, 5})),
                      Contains("channel_wise_kd_loss") && Contains("[2, 3, 4, 4]") && Contains("[2, 3, 4, 5]"));
  REQUIRE_THROWS_WITH(channel_wise_kd_loss(f, f, 0.f), Contains("channel_wise_kd_loss") && Contains("temperature"));
  REQUIRE_THROWS_WITH(channel_wise_kd_loss(f3, f3), Contains("channel_wise_kd_loss") && Contains("[2, 3, 4]"));

  REQUIRE_THROWS_AS(region_affinity_loss(f, f, F::full({2, 8, 8}, 0.5f)), gkd::Error);
  REQUIRE_THROWS_WITH(region_affinity_loss(f, f, F::full({2, 8, 8}, 0.5f)), Contains("region_affinity_loss") && Contains("0 or 1"));
  REQUIRE_THROWS_WITH(region_affinity_loss(f, other_batch, mask), Contains("region_affinity_loss") && Contains("[3, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(region_affinity_loss(f, f, F::zeros({2, 8})), Contains("region_affinity_loss") && Contains("[2, 8]"));
  REQUIRE_THROWS_WITH(region_affinity_loss(f, f, mask, {.foreground_smooth = -1.0}), Contains("region_affinity_loss") && Contains("-1"));
  // an all-foreground sample has no background: with background_smooth 0 that is an error, not a NaN
  REQUIRE_THROWS_WITH(region_contrast(f, F::ones({2, 8, 8})), Contains("region_contrast") && Contains("no background pixel"));
  REQUIRE(std::isfinite(sum(region_contrast(F::ones({2, 3, 4, 4}), F::ones({2, 8, 8}), {.background_smooth = 1.0})).item()));
  REQUIRE_THROWS_WITH(region_contrast(f, mask, {.foreground_smooth = 0.0}), Contains("region_contrast") && Contains("no foreground pixel"));
}
