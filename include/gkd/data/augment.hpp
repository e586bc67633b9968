// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Seeded data augmentation of `Sample`s, composable into a pipeline that makes several differently
/// augmented "views" of one sample (DCGD feeds an anchor and K views to teacher and student).
///
/// Contract
/// - Every random draw comes from the `gkd::Generator` passed in: the same seed gives the same result,
///   on any thread. An op with probability p first draws u ~ U[0, 1) and runs iff u < p, then draws
///   its parameters.
/// - Geometric ops (flip, rot90, affine, elastic, crop) move the image (bilinear, zero outside) and the
///   mask and FOV (nearest neighbour, zero outside) with one and the same coordinate map, so labels stay
///   aligned and exactly binary; flips and rot90 are exact permutations of the pixels.
/// - Photometric ops (gamma, contrast, brightness, blur, noise) change the image only and clamp it to
///   [0, 1]; masks are untouched.
///
/// @code
/// using namespace gkd::data;
/// AugmentPipeline views = AugmentPipeline()
///     .then(flip()).then(rot90()).then(affine({.max_rotation_deg = 15}), 0.7).then(elastic(), 0.3)
///     .then(gamma()).then(contrast()).then(brightness()).then(gaussian_blur(), 0.3).then(gaussian_noise(), 0.5);
/// std::vector<Sample> k_views = views.views(sample, /*count=*/3, /*seed=*/step);
/// @endcode
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/random.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/data/detail/raster.hpp"
#include "gkd/data/sample.hpp"

namespace gkd::data {

/// One named random transformation, applied in place.
struct Augmentation {
  std::string name;
  std::function<void(Sample&, Generator&)> apply;
};

/// Ranges of the random affine map (rotation, isotropic scale, shear, translation) about the centre.
struct AffineRange {
  double max_rotation_deg = 15.0;
  std::array<double, 2> scale{0.9, 1.1};
  double max_shear_deg = 5.0;
  double max_translate = 0.05;  ///< fraction of the size, per axis
};

/// Elastic deformation: a smooth random displacement field (white noise blurred by `sigma` px),
/// scaled so that its RMS displacement is `rms_px` pixels.
struct ElasticParams {
  double rms_px = 2.0;
  double sigma = 8.0;
};

namespace detail {

inline void check_range(const std::array<double, 2>& r, double lo, const char* op) {
  GKD_CHECK(std::isfinite(r[0]) && std::isfinite(r[1]) && r[0] <= r[1] && r[0] >= lo, op,
            "range [" << r[0] << ", " << r[1] << "] must be ordered and start at or above " << lo);
}

/// Bilinear read of a w×h plane at continuous pixel coordinates (centres at integers); `outside` beyond
/// half a pixel past the border.
inline float bilinear_at(const float* d, std::int64_t w, std::int64_t h, double x, double y, float outside) {
  if (x < -0.5 || y < -0.5 || x > double(w) - 0.5 || y > double(h) - 0.5) return outside;
  x = std::clamp(x, 0.0, double(w - 1));
  y = std::clamp(y, 0.0, double(h - 1));
  const std::int64_t x0 = std::min(std::int64_t(x), std::max<std::int64_t>(w - 2, 0));
  const std::int64_t y0 = std::min(std::int64_t(y), std::max<std::int64_t>(h - 2, 0));
  const std::int64_t x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
  const double fx = x - double(x0), fy = y - double(y0);
  return float((1 - fy) * ((1 - fx) * d[y0 * w + x0] + fx * d[y0 * w + x1]) + fy * ((1 - fx) * d[y1 * w + x0] + fx * d[y1 * w + x1]));
}

/// Nearest-neighbour read; `outside` beyond the border.
inline float nearest_at(const float* d, std::int64_t w, std::int64_t h, double x, double y, float outside) {
  const std::int64_t xi = std::llround(x), yi = std::llround(y);
  return xi < 0 || yi < 0 || xi >= w || yi >= h ? outside : d[yi * w + xi];
}

/// New sample of size oh×ow whose pixel (x, y) reads the source at map(x, y) (continuous pixel coordinates).
template <class Map>
Sample remap(const Sample& s, std::int64_t oh, std::int64_t ow, Map map) {
  check_sample(s, "augment");
  const Tensor<float> img = s.image.contiguous();
  const std::int64_t c = img.size(0), h = img.size(1), w = img.size(2);
  Sample out{Tensor<float>::empty({c, oh, ow}), {}, {}, s.name, s.domain};
  std::vector<std::array<double, 2>> src(std::size_t(oh * ow));
  for (std::int64_t y = 0; y < oh; ++y)
    for (std::int64_t x = 0; x < ow; ++x) src[std::size_t(y * ow + x)] = map(double(x), double(y));
  for (std::int64_t k = 0; k < c; ++k) {
    const float* d = img.data() + k * h * w;
    float* o = out.image.data() + k * oh * ow;
    for (std::size_t i = 0; i < src.size(); ++i) o[i] = bilinear_at(d, w, h, src[i][0], src[i][1], 0.f);
  }
  const auto nearest = [&](const Tensor<float>& m) {
    if (!m.defined()) return Tensor<float>();
    const Tensor<float> mc = m.contiguous();
    Tensor<float> r = Tensor<float>::empty({oh, ow});
    for (std::size_t i = 0; i < src.size(); ++i) r.data()[i] = nearest_at(mc.data(), w, h, src[i][0], src[i][1], 0.f);
    return r;
  };
  out.mask = nearest(s.mask);
  out.fov = nearest(s.fov);
  return out;
}

/// The window [y0, y0 + oh) × [x0, x0 + ow) of a sample (copied).
inline Sample crop(const Sample& s, std::int64_t y0, std::int64_t x0, std::int64_t oh, std::int64_t ow) {
  const auto window = [&](const Tensor<float>& t) {
    if (!t.defined()) return Tensor<float>();
    return t.narrow(-2, y0, oh).narrow(-1, x0, ow).contiguous();
  };
  return Sample{window(s.image), window(s.mask), window(s.fov), s.name, s.domain};
}

/// Applies f(value) to every image value, then clamps to [0, 1].
template <class F>
void map_image(Sample& s, F f) {
  s.image = s.image.contiguous().clone();
  float* d = s.image.data();
  for (std::int64_t i = 0; i < s.image.numel(); ++i) d[i] = std::clamp(f(d[i]), 0.f, 1.f);
}

}  // namespace detail

/// Horizontal flip with probability `p_horizontal`, then vertical flip with probability `p_vertical`.
inline Augmentation flip(double p_horizontal = 0.5, double p_vertical = 0.5) {
  GKD_CHECK(p_horizontal >= 0 && p_horizontal <= 1 && p_vertical >= 0 && p_vertical <= 1, "flip",
            "probabilities " << p_horizontal << ", " << p_vertical << " must be in [0, 1]");
  return {"flip", [=](Sample& s, Generator& gen) {
            const bool h = gen.uniform() < p_horizontal, v = gen.uniform() < p_vertical;
            if (!h && !v) return;
            const double W = double(s.width() - 1), H = double(s.height() - 1);
            s = detail::remap(s, s.height(), s.width(), [&](double x, double y) {
              return std::array<double, 2>{h ? W - x : x, v ? H - y : y};
            });
          }};
}

/// Rotation by k × 90° counter-clockwise, k uniform in {0, 1, 2, 3} (odd k swaps height and width).
inline Augmentation rot90() {
  return {"rot90", [](Sample& s, Generator& gen) {
            const int k = std::min(3, int(gen.uniform(0.0, 4.0)));
            if (k == 0) return;
            const double W = double(s.width() - 1), H = double(s.height() - 1);
            const std::int64_t oh = k % 2 ? s.width() : s.height(), ow = k % 2 ? s.height() : s.width();
            s = detail::remap(s, oh, ow, [&](double x, double y) {
              if (k == 1) return std::array<double, 2>{W - y, x};  // output (x, y) reads source (W - y, x)
              if (k == 2) return std::array<double, 2>{W - x, H - y};
              return std::array<double, 2>{y, H - x};
            });
          }};
}

/// Random affine map about the image centre (rotation, scale, shear, translation).
inline Augmentation affine(AffineRange r = {}) {
  detail::check_range(r.scale, 1e-3, "affine");
  GKD_CHECK(r.max_rotation_deg >= 0 && r.max_shear_deg >= 0 && r.max_shear_deg < 60 && r.max_translate >= 0, "affine",
            "rotation " << r.max_rotation_deg << ", shear " << r.max_shear_deg << " (< 60) and translation "
                        << r.max_translate << " must be non-negative");
  return {"affine", [r](Sample& s, Generator& gen) {
            const double deg = std::numbers::pi / 180;
            const double th = gen.uniform(-r.max_rotation_deg, r.max_rotation_deg) * deg;
            const double sc = gen.uniform(r.scale[0], r.scale[1]);
            const double sh = std::tan(gen.uniform(-r.max_shear_deg, r.max_shear_deg) * deg);
            const double tx = gen.uniform(-r.max_translate, r.max_translate) * double(s.width());
            const double ty = gen.uniform(-r.max_translate, r.max_translate) * double(s.height());
            // forward M = R(th) * [[1, sh], [0, 1]] * sc; the sampler needs M^-1
            const double c = std::cos(th), n = std::sin(th);
            const double a = sc * c, b = sc * (c * sh - n), d = sc * n, e = sc * (n * sh + c);
            const double det = a * e - b * d;
            const double cx = 0.5 * double(s.width() - 1), cy = 0.5 * double(s.height() - 1);
            s = detail::remap(s, s.height(), s.width(), [&](double x, double y) {
              const double u = x - cx - tx, v = y - cy - ty;
              return std::array<double, 2>{cx + (e * u - b * v) / det, cy + (-d * u + a * v) / det};
            });
          }};
}

/// Elastic deformation (smooth random displacement field, bilinear image, nearest masks).
inline Augmentation elastic(ElasticParams p = {}) {
  GKD_CHECK(p.rms_px >= 0 && p.sigma > 0, "elastic", "rms_px " << p.rms_px << " must be >= 0 and sigma " << p.sigma << " > 0");
  return {"elastic", [p](Sample& s, Generator& gen) {
            const int w = int(s.width()), h = int(s.height());
            std::array<detail::Plane, 2> field{detail::Plane(w, h), detail::Plane(w, h)};
            for (auto& f : field) {
              for (auto& v : f.v) v = float(gen.normal());
              detail::gaussian_blur(f, p.sigma);
            }
            double ms = 0;
            for (std::size_t i = 0; i < field[0].v.size(); ++i) ms += double(field[0].v[i]) * field[0].v[i] + double(field[1].v[i]) * field[1].v[i];
            const double gain = p.rms_px / std::sqrt(ms / double(field[0].v.size()) + 1e-20);
            s = detail::remap(s, h, w, [&](double x, double y) {
              const int i = int(y) * w + int(x);
              return std::array<double, 2>{x + gain * field[0].v[std::size_t(i)], y + gain * field[1].v[std::size_t(i)]};
            });
          }};
}

/// A random crop of height×width (the sample must be at least that large). With probability
/// `foreground_probability` the crop is centred (as far as the borders allow) on a uniformly chosen
/// mask pixel, so that sparse foreground (vessels, lesions) is sampled more often.
inline Augmentation random_crop(std::int64_t height, std::int64_t width, double foreground_probability = 0.0) {
  GKD_CHECK(height > 0 && width > 0 && foreground_probability >= 0 && foreground_probability <= 1, "random_crop",
            "crop " << height << "x" << width << " and foreground probability " << foreground_probability << " are invalid");
  return {"random_crop", [=](Sample& s, Generator& gen) {
            GKD_CHECK(s.height() >= height && s.width() >= width, "random_crop",
                      "sample '" << s.name << "' of size " << s.height() << "x" << s.width() << " is smaller than the crop "
                                 << height << "x" << width);
            std::int64_t y0 = std::min(s.height() - height, std::int64_t(gen.uniform() * double(s.height() - height + 1)));
            std::int64_t x0 = std::min(s.width() - width, std::int64_t(gen.uniform() * double(s.width() - width + 1)));
            if (s.mask.defined() && gen.uniform() < foreground_probability) {
              const Tensor<float> m = s.mask.contiguous();
              std::int64_t count = 0;
              for (std::int64_t i = 0; i < m.numel(); ++i) count += m.data()[i] > 0.5f;
              if (count > 0) {  // the k-th foreground pixel, k uniform
                std::int64_t k = std::min(count - 1, std::int64_t(gen.uniform() * double(count))), i = 0;
                for (;; ++i)
                  if (m.data()[i] > 0.5f && k-- == 0) break;
                y0 = std::clamp(i / s.width() - height / 2, std::int64_t(0), s.height() - height);
                x0 = std::clamp(i % s.width() - width / 2, std::int64_t(0), s.width() - width);
              }
            }
            check_sample(s, "random_crop");
            s = detail::crop(s, y0, x0, height, width);
          }};
}

/// image ← image^γ with γ log-uniform in `range`.
inline Augmentation gamma(std::array<double, 2> range = {0.7, 1.5}) {
  detail::check_range(range, 1e-3, "gamma");
  return {"gamma", [range](Sample& s, Generator& gen) {
            const float g = float(std::exp(gen.uniform(std::log(range[0]), std::log(range[1]) + 1e-300)));
            detail::map_image(s, [g](float v) { return std::pow(std::max(v, 0.f), g); });
          }};
}

/// Per channel: image ← mean + c · (image − mean), c uniform in `range`.
inline Augmentation contrast(std::array<double, 2> range = {0.75, 1.25}) {
  detail::check_range(range, 0.0, "contrast");
  return {"contrast", [range](Sample& s, Generator& gen) {
            const float c = float(gen.uniform(range[0], range[1]));
            s.image = s.image.contiguous().clone();
            const std::int64_t plane = s.height() * s.width();
            for (std::int64_t k = 0; k < s.channels(); ++k) {
              float* d = s.image.data() + k * plane;
              double mean = 0;
              for (std::int64_t i = 0; i < plane; ++i) mean += d[i];
              const float m = float(mean / double(plane));
              for (std::int64_t i = 0; i < plane; ++i) d[i] = std::clamp(m + c * (d[i] - m), 0.f, 1.f);
            }
          }};
}

/// image ← image + b, b uniform in `range`.
inline Augmentation brightness(std::array<double, 2> range = {-0.1, 0.1}) {
  detail::check_range(range, -1.0, "brightness");
  return {"brightness", [range](Sample& s, Generator& gen) {
            const float b = float(gen.uniform(range[0], range[1]));
            detail::map_image(s, [b](float v) { return v + b; });
          }};
}

/// Gaussian blur of every image channel with σ uniform in `sigma_range` (pixels).
inline Augmentation gaussian_blur(std::array<double, 2> sigma_range = {0.3, 1.2}) {
  detail::check_range(sigma_range, 0.0, "gaussian_blur");
  return {"gaussian_blur", [sigma_range](Sample& s, Generator& gen) {
            const double sigma = gen.uniform(sigma_range[0], sigma_range[1]);
            s.image = s.image.contiguous().clone();
            const int h = int(s.height()), w = int(s.width());
            for (std::int64_t k = 0; k < s.channels(); ++k) {
              detail::Plane p(w, h);
              float* d = s.image.data() + k * h * w;
              std::copy_n(d, h * w, p.v.begin());
              detail::gaussian_blur(p, sigma);
              std::copy(p.v.begin(), p.v.end(), d);
            }
          }};
}

/// Additive Gaussian noise with σ uniform in `sigma_range`.
inline Augmentation gaussian_noise(std::array<double, 2> sigma_range = {0.005, 0.03}) {
  detail::check_range(sigma_range, 0.0, "gaussian_noise");
  return {"gaussian_noise", [sigma_range](Sample& s, Generator& gen) {
            const double sigma = gen.uniform(sigma_range[0], sigma_range[1]);
            detail::map_image(s, [&](float v) { return v + float(gen.normal(0.0, sigma)); });
          }};
}

/// An ordered list of augmentations, each run with its own probability.
class AugmentPipeline {
 public:
  /// Appends `a`, run with probability `probability`.
  AugmentPipeline& then(Augmentation a, double probability = 1.0) & {
    GKD_CHECK(probability >= 0 && probability <= 1, "AugmentPipeline",
              "probability " << probability << " of '" << a.name << "' must be in [0, 1]");
    GKD_CHECK(bool(a.apply), "AugmentPipeline", "augmentation '" << a.name << "' has no function");
    steps_.push_back({std::move(a), probability});
    return *this;
  }
  AugmentPipeline&& then(Augmentation a, double probability = 1.0) && { return std::move(then(std::move(a), probability)); }

  /// A new sample: every step in order, drawing from `gen`. The input is never modified.
  [[nodiscard]] Sample operator()(const Sample& s, Generator& gen) const {
    check_sample(s, "AugmentPipeline");
    Sample out = s;
    for (const auto& [a, p] : steps_)
      if (gen.uniform() < p) a.apply(out, gen);
    return out;
  }
  /// The sample augmented with a generator seeded by `seed`.
  [[nodiscard]] Sample apply(const Sample& s, std::uint64_t seed) const {
    Generator gen(seed);
    return (*this)(s, gen);
  }
  /// `count` views of `s`; view i uses seed `mix(seed, i)`, so the views differ from each other and
  /// are the same for the same seed.
  [[nodiscard]] std::vector<Sample> views(const Sample& s, int count, std::uint64_t seed) const {
    GKD_CHECK(count >= 0, "AugmentPipeline", "view count must be non-negative, got " << count);
    std::vector<Sample> out;
    out.reserve(std::size_t(count));
    for (int i = 0; i < count; ++i) out.push_back(apply(s, detail::mix_seed(seed, std::uint64_t(i) + 1)));
    return out;
  }
  [[nodiscard]] std::size_t size() const noexcept { return steps_.size(); }
  [[nodiscard]] bool empty() const noexcept { return steps_.empty(); }

 private:
  std::vector<std::pair<Augmentation, double>> steps_;
};

/// The default view pipeline for segmentation distillation: flips, rot90, affine (p 0.7), elastic
/// (p 0.3), gamma, contrast, brightness, blur (p 0.3), noise (p 0.5).
inline AugmentPipeline default_augmentation() {
  return AugmentPipeline()
      .then(flip())
      .then(rot90())
      .then(affine(), 0.7)
      .then(elastic(), 0.3)
      .then(gamma())
      .then(contrast())
      .then(brightness())
      .then(gaussian_blur(), 0.3)
      .then(gaussian_noise(), 0.5);
}

}  // namespace gkd::data
