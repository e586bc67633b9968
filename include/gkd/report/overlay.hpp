// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Prediction overlays for a run folder: where a segmentation is right and wrong, drawn over the image.
///
/// Contract
/// - `image` is C×H×W (C = 1 or 3) or H×W with values in [0, 1] (clamped; NaN shown black), as
///   `gkd::data::Sample::image`; `prediction`, `truth` and the optional `fov` are H×W (or 1×H×W).
///   Classification follows `gkd::metrics::confusion`: a pixel is predicted foreground when
///   `prediction >= style.threshold` (0/1 masks and probabilities both work), true foreground when
///   `truth != 0`, inside the field of view when `fov != 0` (everywhere when `fov` is undefined).
/// - `overlay`: inside the FOV each pixel starts from the image's colour (gray replicated to RGB, each
///   value `round(v * 255)`); true positives, false positives and false negatives are then mixed with
///   their colour at opacity `style.alpha` (`mix` in canvas.hpp); true negatives keep the image. Outside
///   the FOV the image is multiplied by `style.outside_fov_brightness` and never tinted (it is not
///   scored). Default colours: true positive green (0, 200, 0), false positive red (230, 30, 30), false
///   negative blue (30, 110, 255).
/// - `side_by_side` tiles [image | ground truth | prediction | overlay], masks white on black (the
///   prediction thresholded), each panel captioned below, with an optional title line above.
/// - Any other shape, or disagreeing H×W, throws `gkd::Error` naming the op and the shapes.
///
/// @code
/// const gkd::data::Sample& s = test_set[0];
/// gkd::Tensor<float> prob = student.predict(s.image);              // H×W in [0, 1]
/// gkd::report::side_by_side(s.image, prob, s.mask, s.fov, s.name + "  Dice 0.81")
///     .save_png(run_dir / "overlays" / (s.name + ".png"));
/// @endcode
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/report/canvas.hpp"

namespace gkd::report {

/// Colours and thresholds of `overlay` (see the file contract).
struct OverlayStyle {
  Rgb true_positive{0, 200, 0};
  Rgb false_positive{230, 30, 30};
  Rgb false_negative{30, 110, 255};
  double alpha = 0.6;
  double outside_fov_brightness = 0.35;
  double threshold = 0.5;
};

namespace detail {
/// H×W of an image tensor (C×H×W with C in {1, 3}, or H×W).
template <Real T>
std::pair<std::int64_t, std::int64_t> image_plane(const Tensor<T>& image, const char* op) {
  GKD_CHECK(image.defined() && (image.dim() == 2 || (image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3))), op,
            "image must be C×H×W with C = 1 or 3 (or H×W), got " << (image.defined() ? to_string(image.shape()) : "undefined"));
  GKD_CHECK(image.size(-1) > 0 && image.size(-2) > 0, op, "image " << to_string(image.shape()) << " is empty");
  return {image.size(-2), image.size(-1)};
}
/// The values of an H×W (or 1×H×W) mask, checked against the image plane.
template <Real T>
std::vector<T> plane_values(const Tensor<T>& mask, std::int64_t h, std::int64_t w, const char* op, const char* what) {
  const bool ok = mask.defined() && ((mask.dim() == 2 && mask.size(0) == h && mask.size(1) == w) ||
                                     (mask.dim() == 3 && mask.size(0) == 1 && mask.size(1) == h && mask.size(2) == w));
  GKD_CHECK(ok, op, what << " must be " << h << "×" << w << " (or 1×" << h << "×" << w << ") like the image, got "
                         << (mask.defined() ? to_string(mask.shape()) : "undefined"));
  return mask.to_vector();
}
inline std::uint8_t to_level(double v) { return std::isnan(v) ? 0 : static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); }
}  // namespace detail

/// The image as an RGB canvas (gray replicated).
template <Real T>
Canvas image_canvas(const Tensor<T>& image) {
  const auto [h, w] = detail::image_plane(image, "image_canvas");
  const std::vector<T> v = image.to_vector();
  const bool rgb = image.dim() == 3 && image.size(0) == 3;
  const std::int64_t plane = h * w;
  Canvas c(static_cast<int>(w), static_cast<int>(h));
  for (std::int64_t i = 0; i < plane; ++i) {
    const std::uint8_t r = detail::to_level(v[i]);
    c.set(static_cast<int>(i % w), static_cast<int>(i / w),
          rgb ? Rgb{r, detail::to_level(v[plane + i]), detail::to_level(v[2 * plane + i])} : Rgb{r, r, r});
  }
  return c;
}

/// The mask white on black: white where `mask != 0`, or where `mask >= *threshold` when one is given.
template <Real T>
Canvas mask_canvas(const Tensor<T>& mask, std::optional<double> threshold = {}) {
  GKD_CHECK(mask.defined() && (mask.dim() == 2 || (mask.dim() == 3 && mask.size(0) == 1)) && mask.numel() > 0, "mask_canvas",
            "mask must be H×W (or 1×H×W), got " << (mask.defined() ? to_string(mask.shape()) : "undefined"));
  const std::int64_t h = mask.size(-2), w = mask.size(-1);
  const std::vector<T> v = mask.to_vector();
  Canvas c(static_cast<int>(w), static_cast<int>(h), colors::black);
  for (std::int64_t i = 0; i < h * w; ++i)
    if (threshold ? double(v[i]) >= *threshold : v[i] != T(0)) c.set(static_cast<int>(i % w), static_cast<int>(i / w), colors::white);
  return c;
}

/// True/false positives and false negatives tinted over the image (see the file contract).
template <Real T>
Canvas overlay(const Tensor<T>& image, const Tensor<T>& prediction, const Tensor<T>& truth, const Tensor<T>& fov = {},
               const OverlayStyle& style = {}) {
  constexpr const char* op = "overlay";
  const auto [h, w] = detail::image_plane(image, op);
  const std::vector<T> p = detail::plane_values(prediction, h, w, op, "prediction");
  const std::vector<T> t = detail::plane_values(truth, h, w, op, "truth");
  const std::vector<T> f = fov.defined() ? detail::plane_values(fov, h, w, op, "fov") : std::vector<T>();
  Canvas c = image_canvas(image);
  for (std::int64_t i = 0; i < h * w; ++i) {
    const int x = static_cast<int>(i % w), y = static_cast<int>(i / w);
    if (!f.empty() && f[i] == T(0)) {
      c.set(x, y, mix(colors::black, c.pixel(x, y), style.outside_fov_brightness));
      continue;
    }
    const bool predicted = double(p[i]) >= style.threshold, actual = t[i] != T(0);
    if (predicted && actual) c.set(x, y, mix(c.pixel(x, y), style.true_positive, style.alpha));
    else if (predicted) c.set(x, y, mix(c.pixel(x, y), style.false_positive, style.alpha));
    else if (actual) c.set(x, y, mix(c.pixel(x, y), style.false_negative, style.alpha));
  }
  return c;
}

/// [image | ground truth | prediction | overlay] in one canvas, captioned, with `title` above when given.
template <Real T>
Canvas side_by_side(const Tensor<T>& image, const Tensor<T>& prediction, const Tensor<T>& truth, const Tensor<T>& fov = {},
                    const std::string& title = "", const OverlayStyle& style = {}) {
  constexpr const char* op = "side_by_side";
  const auto [ih, iw] = detail::image_plane(image, op);
  detail::plane_values(prediction, ih, iw, op, "prediction");
  detail::plane_values(truth, ih, iw, op, "truth");
  if (fov.defined()) detail::plane_values(fov, ih, iw, op, "fov");
  const Canvas panels[4] = {image_canvas(image), mask_canvas(truth), mask_canvas(prediction, style.threshold),
                            overlay(image, prediction, truth, fov, style)};
  const char* captions[4] = {"image", "ground truth", "prediction", "overlay"};
  const int w = panels[0].width(), h = panels[0].height();
  const int s = std::max(1, w / 160), gap = 4 * s, line = Canvas::text_height(s) + 2 * gap;
  const int top = title.empty() ? 0 : line;
  Canvas c(4 * w + 5 * gap, top + gap + h + line);
  if (!title.empty()) c.text(gap, gap, title, colors::black, s);
  for (int k = 0; k < 4; ++k) {
    const int x = gap + k * (w + gap);
    c.blit(panels[k], x, top + gap);
    c.text(x + (w - Canvas::text_width(captions[k], s)) / 2, top + gap + h + gap, captions[k], colors::black, s);
  }
  return c;
}

}  // namespace gkd::report
