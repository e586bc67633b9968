// SPDX-License-Identifier: Apache-2.0
// Confusion-matrix metrics and ROC-AUC: data.md's hand vectors, the pinned empty-mask conventions, and
// scikit-learn golden values (tools/golden/metrics.py) on generated scores with ties, FOV masks and
// accumulation over several images.
#include <gkd/metrics/roc_auc.hpp>
#include <gkd/metrics/segmentation.hpp>

#include <catch2/catch.hpp>
#include <cmath>

#include "support/golden.hpp"

using gkd::Tensor;
namespace gm = gkd::metrics;

namespace {
Tensor<float> grid_rect(int r0, int r1, int c0, int c1) {  // 6×6, ones on rows r0..r1 × cols c0..c1
  auto t = Tensor<float>::zeros({6, 6});
  for (int r = r0; r <= r1; ++r)
    for (int c = c0; c <= c1; ++c) t.at({r, c}) = 1.f;
  return t;
}
}  // namespace

TEST_CASE("data.md 6x6 grid: Dice 2/3, IoU 1/2", "[metrics]") {
  const auto gt = grid_rect(1, 3, 1, 3), pred = grid_rect(1, 3, 2, 4);
  CHECK(gm::dice(pred, gt) == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(gm::iou(pred, gt) == 0.5);
  const auto c = gm::confusion(pred, gt);
  CHECK(c.tp == 6);
  CHECK(c.fp == 3);
  CHECK(c.fn == 3);
  CHECK(c.tn == 24);
  CHECK(c.mean_iou() == Approx(0.5 * (0.5 + 24.0 / 30.0)).epsilon(1e-15));
}

TEST_CASE("MONAI vector: sigmoid of [[1,-1],[-1,1]] thresholded at 0.5 vs [[1,0],[1,1]] gives Dice 0.8", "[metrics]") {
  auto logits = Tensor<double>::from({2, 2}, {1, -1, -1, 1});
  auto prob = Tensor<double>::empty({2, 2});
  for (int i = 0; i < 4; ++i) prob.data()[i] = 1.0 / (1.0 + std::exp(-logits.data()[i]));
  CHECK(gm::dice(prob, Tensor<double>::from({2, 2}, {1, 0, 1, 1})) == Approx(0.8).epsilon(1e-15));
}

TEST_CASE("Empty-mask conventions: both empty -> Dice/IoU 1, one empty -> 0, undefined ratios NaN", "[metrics]") {
  const auto empty = Tensor<float>::zeros({6, 6}), some = grid_rect(1, 2, 1, 2);
  CHECK(gm::dice(empty, empty) == 1.0);
  CHECK(gm::iou(empty, empty) == 1.0);
  CHECK(gm::dice(some, empty) == 0.0);
  CHECK(gm::dice(empty, some) == 0.0);
  CHECK(gm::iou(empty, some) == 0.0);
  const auto c = gm::confusion(empty, empty);
  CHECK(std::isnan(c.sensitivity()));  // no positives in the target
  CHECK(std::isnan(c.precision()));    // no predicted positives
  CHECK(c.specificity() == 1.0);
  CHECK(c.mean_iou() == 1.0);
  const auto all = Tensor<float>::ones({6, 6});
  CHECK(std::isnan(gm::confusion(all, all).specificity()));  // no negatives
  CHECK(gm::confusion(all, all).background_iou() == 1.0);
}

TEST_CASE("FOV restricts every count, shape mismatches are errors", "[metrics]") {
  const auto gt = grid_rect(1, 3, 1, 3), pred = grid_rect(1, 3, 2, 4);
  const auto fov = grid_rect(0, 5, 0, 2);  // columns 0..2 only
  const auto c = gm::confusion(pred, gt, fov);
  CHECK(c.total() == 18);
  CHECK(c.tp == 3);  // (1..3, 2)
  CHECK(c.fn == 3);  // (1..3, 1)
  CHECK(c.fp == 0);
  CHECK_THROWS_AS(gm::confusion(pred, Tensor<float>::zeros({5, 6})), gkd::Error);
  CHECK_THROWS_AS(gm::confusion(pred, gt, Tensor<float>::zeros({6, 5})), gkd::Error);
}

TEST_CASE("Exact AUC: perfect, reversed, all tied, and one class missing", "[metrics]") {
  std::vector<float> pos{0.9f, 0.8f}, neg{0.1f, 0.2f, 0.3f};
  CHECK(gm::roc_auc(pos, neg) == 1.0);
  CHECK(gm::roc_auc(neg, pos) == 0.0);
  std::vector<float> tie_p{0.5f, 0.5f}, tie_n{0.5f};
  CHECK(gm::roc_auc(tie_p, tie_n) == 0.5);
  std::vector<float> none;
  CHECK(std::isnan(gm::roc_auc(none, neg)));
  std::vector<float> p2{0.4f, 0.6f}, n2{0.4f, 0.2f};  // pairs: (0.4,0.4)=½ (0.4,0.2)=1 (0.6,*)=1+1 → 3.5/4
  CHECK(gm::roc_auc(p2, n2) == 0.875);
}

TEST_CASE("Confusion metrics and AUC match scikit-learn golden values", "[metrics][golden]") {
  const gkd::test::Golden golden("metrics");
  auto check_all = [&](const std::string& key, const gm::SegmentationMetrics& m, double auc) {
    INFO(key);
    CHECK(m.accuracy == Approx(golden.scalar(key + ".accuracy")).epsilon(1e-14));
    CHECK(m.sensitivity == Approx(golden.scalar(key + ".sensitivity")).epsilon(1e-14));
    CHECK(m.specificity == Approx(golden.scalar(key + ".specificity")).epsilon(1e-14));
    CHECK(m.precision == Approx(golden.scalar(key + ".precision")).epsilon(1e-14));
    CHECK(m.f1 == Approx(golden.scalar(key + ".f1")).epsilon(1e-14));
    CHECK(m.iou == Approx(golden.scalar(key + ".iou")).epsilon(1e-14));
    CHECK(m.mean_iou == Approx(golden.scalar(key + ".mean_iou")).epsilon(1e-14));
    CHECK(auc == Approx(golden.scalar(key + ".auc")).epsilon(1e-12));
  };
  for (const std::string key : {"continuous", "ties"}) {
    const auto y = golden.get<double>(key + ".labels"), s = golden.get<double>(key + ".scores");
    gm::ConfusionAccumulator acc;
    gm::RocAucAccumulator auc;
    acc.add(s, y);
    auc.add(s, y);
    check_all(key, acc.metrics(), auc.value());
  }
  gm::ConfusionAccumulator acc;
  gm::RocAucAccumulator auc;
  for (int i = 0; i < 3; ++i) {
    const std::string k = "fov.image" + std::to_string(i);
    acc.add(golden.get<double>(k + ".scores"), golden.get<double>(k + ".labels"), golden.get<double>(k + ".fov"));
    auc.add(golden.get<double>(k + ".scores"), golden.get<double>(k + ".labels"), golden.get<double>(k + ".fov"));
  }
  check_all("fov", acc.metrics(), auc.value());
  CHECK(auc.value() == auc.value());  // a second call on the sorted store gives the same result
}
