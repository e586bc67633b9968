// SPDX-License-Identifier: Apache-2.0
// Prediction overlays: TP/FP/FN/TN colours on hand-built pixels (gray and RGB images, probabilities),
// the darkened outside of the FOV, the side-by-side tiling, and shape errors naming op and shapes.
#include <gkd/report/overlay.hpp>

#include <catch2/catch.hpp>

#include "support/rgb_printer.hpp"
#include "support/scratch.hpp"

using gkd::Tensor;
using gkd::report::Canvas;
using gkd::report::OverlayStyle;
using gkd::report::Rgb;
namespace colors = gkd::report::colors;


namespace {
// 2×3 plane, row-major: (0,0) TP, (0,1) FP, (0,2) FN, (1,0) TN, (1,1) TP outside the FOV, (1,2) TN.
const Tensor<float> kPrediction = Tensor<float>::from({2, 3}, {1, 1, 0, 0, 1, 0});
const Tensor<float> kTruth = Tensor<float>::from({2, 3}, {1, 0, 1, 0, 1, 0});
const Tensor<float> kFov = Tensor<float>::from({2, 3}, {1, 1, 1, 1, 0, 1});
Rgb gray(double v) {
  const auto l = static_cast<std::uint8_t>(std::lround(v * 255));
  return {l, l, l};
}
}  // namespace

TEST_CASE("overlay tints TP, FP and FN in the documented colours over a gray image", "[report]") {
  const Tensor<float> image = Tensor<float>::from({1, 2, 3}, {0.2f, 0.4f, 0.6f, 0.8f, 1.0f, 0.0f});
  const OverlayStyle style;
  CHECK(style.true_positive == Rgb{0, 200, 0});
  CHECK(style.false_positive == Rgb{230, 30, 30});
  CHECK(style.false_negative == Rgb{30, 110, 255});
  const Canvas c = gkd::report::overlay(image, kPrediction, kTruth, kFov);
  REQUIRE(c.width() == 3);
  REQUIRE(c.height() == 2);
  CHECK(c.pixel(0, 0) == gkd::report::mix(gray(0.2), style.true_positive, 0.6));
  CHECK(c.pixel(1, 0) == gkd::report::mix(gray(0.4), style.false_positive, 0.6));
  CHECK(c.pixel(2, 0) == gkd::report::mix(gray(0.6), style.false_negative, 0.6));
  CHECK(c.pixel(0, 1) == gray(0.8));                                        // TN: the image
  CHECK(c.pixel(1, 1) == gkd::report::mix(colors::black, gray(1.0), 0.35)); // outside the FOV: darkened only
  CHECK(c.pixel(2, 1) == gray(0.0));
  // Exact values of the default mix, worked by hand: 0.4 * 51 + 0.6 * (0, 200, 0).
  CHECK(c.pixel(0, 0) == Rgb{20, 140, 20});

  // Without a FOV the (1, 1) pixel is an ordinary true positive; an H×W image works too.
  const Canvas all = gkd::report::overlay(image.reshape({2, 3}), kPrediction, kTruth);
  CHECK(all.pixel(1, 1) == gkd::report::mix(gray(1.0), style.true_positive, 0.6));
}

TEST_CASE("overlay keeps RGB images, thresholds probabilities, and honours a custom style", "[report]") {
  // Every pixel has colour (r, g, b) = (0.2, 0.6, 0.8).
  std::vector<float> rgb(18);
  for (int i = 0; i < 6; ++i) rgb[i] = 0.2f, rgb[6 + i] = 0.6f, rgb[12 + i] = 0.8f;
  const Tensor<float> image = Tensor<float>::from({3, 2, 3}, rgb);
  const Tensor<float> probability = Tensor<float>::from({1, 2, 3}, {0.7f, 0.5f, 0.49f, 0.1f, 0.9f, 0.0f});
  OverlayStyle style;
  style.true_positive = Rgb{255, 255, 0};
  style.alpha = 1.0;
  style.threshold = 0.6;  // 0.5 at (1, 0) is now background: a true negative
  const Canvas c = gkd::report::overlay(image, probability, kTruth, Tensor<float>(), style);
  const Rgb base{51, 153, 204};
  CHECK(c.pixel(0, 0) == Rgb{255, 255, 0});
  CHECK(c.pixel(1, 0) == base);
  CHECK(c.pixel(2, 0) == style.false_negative);
  CHECK(c.pixel(0, 1) == base);
  CHECK(gkd::report::image_canvas(image).pixel(2, 1) == base);
}

TEST_CASE("side_by_side tiles image, truth, prediction and overlay with captions", "[report]") {
  const std::int64_t h = 40, w = 48;
  Tensor<float> image = Tensor<float>::full({1, h, w}, 0.5f);
  std::vector<float> truth(h * w, 0.f), prediction(h * w, 0.f);
  for (std::int64_t y = 10; y < 20; ++y)
    for (std::int64_t x = 0; x < w; ++x) truth[y * w + x] = 1.f, prediction[y * w + x] = x < w / 2 ? 1.f : 0.f;
  const Tensor<float> t = Tensor<float>::from({h, w}, truth), p = Tensor<float>::from({h, w}, prediction);
  const Canvas c = gkd::report::side_by_side(image, p, t, {}, "sample 01  Dice 0.67");
  const int gap = 4, top = Canvas::text_height(1) + 2 * gap;
  CHECK(c.width() == 4 * w + 5 * gap);
  CHECK(c.height() == top + gap + h + Canvas::text_height(1) + 2 * gap);
  auto panel = [&](int k, int x, int y) { return c.pixel(gap + k * (static_cast<int>(w) + gap) + x, top + gap + y); };
  CHECK(panel(0, 5, 15) == gray(0.5));
  CHECK(panel(1, 40, 15) == colors::white);  // truth
  CHECK(panel(1, 40, 25) == colors::black);
  CHECK(panel(2, 5, 15) == colors::white);   // prediction
  CHECK(panel(2, 40, 15) == colors::black);
  CHECK(panel(3, 5, 15) == gkd::report::mix(gray(0.5), OverlayStyle().true_positive, 0.6));
  CHECK(panel(3, 40, 15) == gkd::report::mix(gray(0.5), OverlayStyle().false_negative, 0.6));
  CHECK(panel(3, 40, 30) == gray(0.5));
  int title_ink = 0, caption_ink = 0;
  for (int x = 0; x < c.width(); ++x) {
    for (int y = 0; y < top; ++y) title_ink += c.pixel(x, y) == colors::black;
    for (int y = top + gap + static_cast<int>(h); y < c.height(); ++y) caption_ink += c.pixel(x, y) == colors::black;
  }
  CHECK(title_ink > 30);
  CHECK(caption_ink > 60);
}

TEST_CASE("shape mismatches throw naming the op and the shapes", "[report]") {
  const Tensor<float> image = Tensor<float>::zeros({3, 2, 3});
  using gkd::test::error_of;
  const std::string wrong_prediction = error_of([&] { (void)gkd::report::overlay(image, Tensor<float>::zeros({3, 2}), kTruth); });
  CHECK_THAT(wrong_prediction, Catch::Contains("overlay") && Catch::Contains("prediction") && Catch::Contains("[3, 2]") &&
                                   Catch::Contains("2×3"));
  const std::string wrong_fov = error_of([&] { (void)gkd::report::overlay(image, kPrediction, kTruth, Tensor<float>::zeros({2, 4})); });
  CHECK_THAT(wrong_fov, Catch::Contains("overlay") && Catch::Contains("fov") && Catch::Contains("[2, 4]"));
  const std::string two_channels = error_of([&] { (void)gkd::report::overlay(Tensor<float>::zeros({2, 2, 3}), kPrediction, kTruth); });
  CHECK_THAT(two_channels, Catch::Contains("overlay") && Catch::Contains("C = 1 or 3") && Catch::Contains("[2, 2, 3]"));
  const std::string tiled = error_of([&] { (void)gkd::report::side_by_side(image, kPrediction, Tensor<float>::zeros({1, 3, 2})); });
  CHECK_THAT(tiled, Catch::Contains("side_by_side") && Catch::Contains("truth") && Catch::Contains("[1, 3, 2]"));
  CHECK_THAT(error_of([&] { (void)gkd::report::overlay(Tensor<float>(), kPrediction, kTruth); }), Catch::Contains("undefined"));
  CHECK_THAT(error_of([&] { (void)gkd::report::mask_canvas(Tensor<float>::zeros({2, 2, 2})); }), Catch::Contains("mask_canvas"));
}
