// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Synthetic 2D axial abdominal CT slices at liver level with exact liver, lesion and hepatic-vessel
/// masks, in two scanner domains (docs/data.md §2.3).
///
/// Anatomy (patient millimetres, radiological view: patient right on the image left, anterior up): a
/// body outline (ellipse with low-order harmonic wobble) with a subcutaneous fat ring and an abdominal
/// wall muscle ring; vertebra with spinal canal and posterior arch; paraspinal muscles; aorta and IVC;
/// the **liver** as a union of 3–5 ellipses in the patient-right anterior region deformed by a smooth
/// random displacement field; spleen, stomach (air over fluid), optional kidneys, bowel loops, visceral
/// fat/soft-tissue mix; hepatic vessels grown by space colonization inside the liver (Murray radii);
/// 0–3 round hypodense lesions of 5–15 mm radius. Labels are evaluated on a supersampled grid: a pixel's
/// label is the majority of its subsamples (exact by construction), its HU the subsample mean (partial
/// volume).
///
/// | domain | phase | liver / vessels / lesions (HU) | noise σ (HU) | kernel | field of view (spacing at 512 px) | window |
/// |---|---|---|---|---|---|---|
/// | `ct_venous` | portal-venous | 100–130 / 150–200 / 40–70 | 8–14, high-pass (sharp NPS) | sharp (unsharp mask) | 340–380 mm (0.66–0.74 mm) | W400 / L40 |
/// | `ct_plain` | unenhanced | 55–65 / 35–45 / 20–40 | 15–22, low-pass (soft NPS) | soft (Gaussian, 1.2 mm) | 420–460 mm (0.82–0.90 mm) | W350 / L60 |
///
/// The Sample `image` is the windowed slice in [0, 1] (1×H×W), `mask` the liver (lesions and
/// intrahepatic vessels included, as in LiTS), `fov` the body.
///
/// @code
/// gkd::data::CtSlice s = gkd::data::generate_ct(gkd::data::CtDomain::Venous, /*seed=*/3, {.size = 256});
/// // s.hu [1, 256, 256] in HU; s.image windowed to [0, 1]; s.liver, s.lesions, s.vessels, s.body exactly 0/1
/// auto test = gkd::data::ct_dataset(gkd::data::CtDomain::Plain, /*count=*/20, /*seed=*/9);
/// @endcode
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/random.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/data/detail/raster.hpp"
#include "gkd/data/detail/vessel_tree.hpp"
#include "gkd/data/sample.hpp"

namespace gkd::data {

/// The two synthetic CT scanner/protocol domains.
enum class CtDomain { Venous, Plain };

/// "ct_venous", "ct_plain".
inline std::string domain_name(CtDomain d) { return d == CtDomain::Venous ? "ct_venous" : "ct_plain"; }

/// Parses "ct_venous"/"venous" and "ct_plain"/"plain"; throws gkd::Error otherwise.
inline CtDomain parse_ct_domain(const std::string& s) {
  if (s == "ct_venous" || s == "venous") return CtDomain::Venous;
  if (s == "ct_plain" || s == "plain") return CtDomain::Plain;
  GKD_FAIL("parse_ct_domain", "unknown CT domain '" << s << "' (expected ct_venous or ct_plain)");
}

/// Output size settings.
struct CtOptions {
  int size = 256;       ///< output width and height (>= 32)
  int supersample = 2;  ///< subsamples per pixel side (1..8)
};

/// A generated slice with its labels; masks are [size, size] and exactly 0/1.
struct CtSlice {
  Tensor<float> hu;       ///< [1, size, size], Hounsfield units
  Tensor<float> image;    ///< [1, size, size], the domain's window mapped to [0, 1]
  Tensor<float> liver;    ///< liver incl. lesions and intrahepatic vessels
  Tensor<float> lesions;
  Tensor<float> vessels;  ///< hepatic vessels (inside the liver)
  Tensor<float> body;
  double spacing_mm = 0;  ///< pixel spacing
  double window_center = 0, window_width = 0;
  double liver_fraction = 0;  ///< liver pixels / body pixels
};

namespace detail {

enum CtLabel : std::uint8_t {
  kAir, kFat, kWall, kVisceral, kBone, kCanal, kMuscle, kAorta, kIvc, kKidney, kSpleen, kStomachAir, kStomachFluid,
  kBowelAir, kBowelFluid, kLiver, kLesion, kHepaticVessel, kLabelCount
};

struct Ellipse {
  double cx, cy, rx, ry, angle = 0;
  [[nodiscard]] double level(double x, double y) const {  // < 1 inside
    const double c = std::cos(angle), s = std::sin(angle);
    const double u = ((x - cx) * c + (y - cy) * s) / rx, v = (-(x - cx) * s + (y - cy) * c) / ry;
    return u * u + v * v;
  }
  [[nodiscard]] bool contains(double x, double y) const { return level(x, y) < 1.0; }
};

struct CtAnatomy {
  double a, b, fat, wall;                    // body half-axes, fat and wall thickness (mm)
  std::array<double, 6> harmonics;           // body wobble: amplitude/phase for k = 2, 3, 4
  Ellipse vertebra, canal, arch, aorta, ivc, spleen, stomach;
  std::array<Ellipse, 2> muscles, kidneys;
  bool has_kidneys;
  std::vector<Ellipse> liver, lesions;
  std::vector<std::pair<Ellipse, bool>> bowel;  // loop, air-filled
  Plane warp_x, warp_y, visceral;               // on a 4 mm lattice over [-250, 250] mm
  std::vector<TreeNode> vessels;

  [[nodiscard]] double body_radius(double theta) const {
    double r = 1.0;
    for (int k = 0; k < 3; ++k) r += harmonics[std::size_t(2 * k)] * std::cos((k + 2) * theta + harmonics[std::size_t(2 * k + 1)]);
    return r;
  }
  /// Body level (< 1 inside) after scaling the outline inwards by `inset` mm.
  [[nodiscard]] double body_level(double x, double y, double inset) const {
    const double theta = std::atan2(y / b, x / a), r = body_radius(theta);
    const double u = x / ((a - inset) * r), v = y / ((b - inset) * r);
    return u * u + v * v;
  }
  [[nodiscard]] float field(const Plane& p, double x, double y) const { return p.bilinear((x + 250) / 4.0, (y + 250) / 4.0, 0.f); }
  [[nodiscard]] bool in_liver(double x, double y) const {
    const double wx = x + field(warp_x, x, y), wy = y + field(warp_y, x, y);
    if (body_level(wx, wy, fat + wall + 4) >= 1) return false;
    for (const auto& e : liver)
      if (e.contains(wx, wy)) return true;
    return false;
  }
  [[nodiscard]] CtLabel label(double x, double y) const {
    if (body_level(x, y, 0) >= 1) return kAir;
    if (body_level(x, y, fat) >= 1) return kFat;
    if (body_level(x, y, fat + wall) >= 1) return kWall;
    if (canal.contains(x, y)) return kCanal;
    if (vertebra.contains(x, y) || arch.contains(x, y)) return kBone;
    if (muscles[0].contains(x, y) || muscles[1].contains(x, y)) return kMuscle;
    if (aorta.contains(x, y)) return kAorta;
    if (ivc.contains(x, y)) return kIvc;
    if (has_kidneys && (kidneys[0].contains(x, y) || kidneys[1].contains(x, y))) return kKidney;
    if (in_liver(x, y)) {
      for (const auto& l : lesions)
        if (l.contains(x, y)) return kLesion;
      return kLiver;
    }
    if (spleen.contains(x, y)) return kSpleen;
    if (stomach.contains(x, y)) return y < stomach.cy - 0.35 * stomach.ry ? kStomachAir : kStomachFluid;
    for (const auto& [e, air] : bowel)
      if (e.contains(x, y)) return air ? kBowelAir : kBowelFluid;
    return kVisceral;
  }
};

inline CtAnatomy ct_anatomy(Generator& gen) {
  CtAnatomy A;
  A.a = gen.uniform(140, 170), A.b = gen.uniform(100, 125), A.fat = gen.uniform(8, 25), A.wall = gen.uniform(6, 10);
  for (int k = 0; k < 3; ++k) {
    A.harmonics[std::size_t(2 * k)] = gen.uniform(-0.025, 0.025);
    A.harmonics[std::size_t(2 * k + 1)] = gen.uniform(0.0, 2 * std::numbers::pi);
  }
  const double ai = A.a - A.fat - A.wall, bi = A.b - A.fat - A.wall;  // inner half-axes
  const double vy = bi - gen.uniform(38, 46);
  const double vr = gen.uniform(15, 19);
  A.vertebra = {0, vy, vr, vr * 0.9};
  A.canal = {0, vy + vr + 6, 7, 6};
  A.arch = {0, vy + vr + 8, 14, 12};
  for (int s = 0; s < 2; ++s)
    A.muscles[std::size_t(s)] = {(s ? 1 : -1) * gen.uniform(30, 38), vy + vr + 4, gen.uniform(18, 24), gen.uniform(14, 18), (s ? 1 : -1) * 0.3};
  A.aorta = {gen.uniform(8, 16), vy - vr - gen.uniform(10, 14), gen.uniform(10, 13), 0};
  A.aorta.ry = A.aorta.rx;
  A.ivc = {-gen.uniform(18, 26), vy - vr - gen.uniform(12, 20), gen.uniform(9, 12), gen.uniform(8, 11)};
  A.has_kidneys = gen.uniform() < 0.5;
  for (int s = 0; s < 2; ++s)
    A.kidneys[std::size_t(s)] = {(s ? 1 : -1) * gen.uniform(0.42, 0.5) * ai, vy + gen.uniform(-5, 10), gen.uniform(22, 28),
                                 gen.uniform(28, 34), (s ? -1 : 1) * 0.5};
  A.spleen = {gen.uniform(0.55, 0.7) * ai, gen.uniform(0.1, 0.35) * bi, gen.uniform(0.14, 0.22) * ai, gen.uniform(0.25, 0.35) * bi,
              gen.uniform(-0.6, -0.2)};
  A.stomach = {gen.uniform(0.25, 0.45) * ai, -gen.uniform(0.25, 0.45) * bi, gen.uniform(0.18, 0.28) * ai,
               gen.uniform(0.2, 0.3) * bi, gen.uniform(-0.4, 0.4)};
  // Liver: a main lobe plus 2-4 lobules, deformed by a smooth displacement field.
  A.liver.push_back({-gen.uniform(0.4, 0.5) * ai, -gen.uniform(0.0, 0.12) * bi, gen.uniform(0.42, 0.5) * ai,
                     gen.uniform(0.55, 0.7) * bi, gen.uniform(-0.3, 0.3)});
  const int lobules = 2 + int(gen.uniform(0.0, 3.0));
  for (int k = 0; k < lobules; ++k) {
    const double phi = gen.uniform(0.0, 2 * std::numbers::pi);
    const auto& m = A.liver[0];
    A.liver.push_back({m.cx + 0.6 * m.rx * std::cos(phi), m.cy + 0.6 * m.ry * std::sin(phi), gen.uniform(0.18, 0.32) * ai,
                       gen.uniform(0.2, 0.35) * bi, gen.uniform(0.0, std::numbers::pi)});
  }
  A.warp_x = fractal_noise(126, 126, 5, 2, 0.5, gen);
  A.warp_y = fractal_noise(126, 126, 5, 2, 0.5, gen);
  for (auto* w : {&A.warp_x, &A.warp_y})
    for (auto& v : w->v) v *= 12.f;  // mm
  A.visceral = fractal_noise(126, 126, 12, 2, 0.5, gen);
  const int loops = 3 + int(gen.uniform(0.0, 4.0));
  for (int k = 0; k < loops; ++k) {
    const double r = gen.uniform(8, 15);
    A.bowel.push_back({{gen.uniform(-0.1, 0.55) * ai, gen.uniform(-0.75, 0.1) * bi, r, r * gen.uniform(0.7, 1.0), gen.uniform(0.0, 3.0)},
                       gen.uniform() < 0.4});
  }
  // Lesions: centres rejection-sampled inside the liver.
  const int lesions = int(gen.uniform(0.0, 4.0));
  for (int k = 0, tries = 0; k < lesions && tries < 400; ++tries) {
    const double x = gen.uniform(-ai, 0), y = gen.uniform(-bi, bi), r = gen.uniform(5, 15);
    if (!A.in_liver(x, y) || !A.in_liver(x + r, y) || !A.in_liver(x - r, y) || !A.in_liver(x, y + r) || !A.in_liver(x, y - r)) continue;
    A.lesions.push_back({x, y, r, r * gen.uniform(0.8, 1.0), gen.uniform(0.0, 3.0)});
    ++k;
  }
  // Hepatic vessels: space colonization inside the liver from the most medial and most posterior points.
  std::vector<std::array<double, 2>> attractors, inside;
  for (int t = 0; t < 6000 && attractors.size() < 220; ++t) {
    const double x = gen.uniform(-ai, 0.2 * ai), y = gen.uniform(-bi, bi);
    if (!A.in_liver(x, y)) continue;
    inside.push_back({x, y});
    bool close = false;
    for (const auto& p : attractors) close = close || std::hypot(p[0] - x, p[1] - y) < 7.0;
    if (!close) attractors.push_back({x, y});
  }
  if (!inside.empty()) {
    const auto medial = *std::max_element(inside.begin(), inside.end(), [](auto& p, auto& q) { return p[0] < q[0]; });
    const auto posterior = *std::max_element(inside.begin(), inside.end(), [](auto& p, auto& q) { return p[1] < q[1]; });
    for (int t = 0; t < 2; ++t) {
      TreeNode root;
      root.x = (t ? posterior : medial)[0], root.y = (t ? posterior : medial)[1], root.tree = t;
      A.vessels.push_back(root);
    }
    Colonization p;
    p.influence = 30, p.kill = 7, p.step = 2.5, p.max_iterations = 300, p.branch_gap = 3, p.tortuosity = 0.25;
    colonize(A.vessels, attractors, p, 2, [](int t) { return t; }, [&A](double x, double y) { return A.in_liver(x, y); }, gen);
    murray_radii(A.vessels, gen.uniform(1.0, 1.4), gen.uniform(2.7, 3.0), [](int) { return 1.0; });
  }
  return A;
}

}  // namespace detail

/// Generates one slice of `domain`, deterministic in (domain, seed, options).
/// @throws gkd::Error for a size below 32 or a supersampling factor outside 1..8.
inline CtSlice generate_ct(CtDomain domain, std::uint64_t seed, const CtOptions& opt = {}) {
  using namespace detail;
  GKD_CHECK(opt.size >= 32 && opt.size <= 4096, "generate_ct", "size must be in [32, 4096], got " << opt.size);
  GKD_CHECK(opt.supersample >= 1 && opt.supersample <= 8, "generate_ct", "supersample must be in [1, 8], got " << opt.supersample);
  Generator geo_gen(mix_seed(seed, 101));
  Generator gen(mix_seed(seed, 202 + std::uint64_t(domain)));
  const CtAnatomy A = ct_anatomy(geo_gen);
  const bool venous = domain == CtDomain::Venous;
  const int n = opt.size, ss = opt.supersample, m = n * ss;
  const double fov_mm = venous ? gen.uniform(340, 380) : gen.uniform(420, 460);
  const double spacing = fov_mm / n, sub = spacing / ss;

  std::array<double, kLabelCount> hu{};
  hu[kAir] = -1000, hu[kFat] = gen.uniform(-110, -90), hu[kWall] = gen.uniform(45, 55), hu[kBone] = gen.uniform(500, 800);
  hu[kCanal] = 20, hu[kMuscle] = gen.uniform(45, 55), hu[kStomachAir] = -1000, hu[kBowelAir] = -950;
  hu[kStomachFluid] = gen.uniform(5, 15), hu[kBowelFluid] = gen.uniform(10, 25), hu[kVisceral] = 0;
  hu[kAorta] = venous ? gen.uniform(150, 190) : gen.uniform(35, 45);
  hu[kIvc] = venous ? gen.uniform(120, 150) : gen.uniform(30, 40);
  hu[kKidney] = venous ? gen.uniform(150, 200) : gen.uniform(28, 35);
  hu[kSpleen] = venous ? gen.uniform(105, 120) : gen.uniform(42, 50);
  hu[kLiver] = venous ? gen.uniform(100, 130) : gen.uniform(55, 65);
  hu[kLesion] = venous ? gen.uniform(40, 70) : gen.uniform(20, 40);
  hu[kHepaticVessel] = venous ? gen.uniform(150, 200) : gen.uniform(35, 45);

  const double origin = -0.5 * fov_mm;
  const VesselField vf = vessel_field(A.vessels, m, m, origin, origin, 1.0 / sub, 1.0);
  CtSlice out;
  out.spacing_mm = spacing;
  out.window_center = venous ? 40 : 60;
  out.window_width = venous ? 400 : 350;
  out.hu = Tensor<float>::empty({1, n, n});
  for (auto* t : {&out.liver, &out.lesions, &out.vessels, &out.body}) *t = Tensor<float>::zeros({n, n});
  Plane img(n, n);
  const double inv = 1.0 / (ss * ss);
  std::int64_t liver_px = 0, body_px = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      double sum = 0;
      int liver = 0, lesion = 0, vessel = 0, body = 0;
      for (int j = 0; j < ss; ++j)
        for (int i = 0; i < ss; ++i) {
          const double px = origin + (x * ss + i + 0.5) * sub, py = origin + (y * ss + j + 0.5) * sub;
          CtLabel l = A.label(px, py);
          if ((l == kLiver || l == kLesion) && vf.u[std::size_t(y * ss + j) * m + std::size_t(x * ss + i)] < 1.f) l = kHepaticVessel;
          double v = hu[l];
          if (l == kVisceral) v = A.field(A.visceral, px, py) > 0.05 ? -95.0 : 25.0;
          sum += v;
          liver += l == kLiver || l == kLesion || l == kHepaticVessel;
          lesion += l == kLesion;
          vessel += l == kHepaticVessel;
          body += l != kAir;
        }
      const std::size_t k = std::size_t(y) * n + x;
      img.at(x, y) = float(sum * inv);
      const int half = (ss * ss) / 2 + 1;  // strict majority (ties: background)
      out.liver.data()[k] = liver >= half ? 1.f : 0.f;
      out.lesions.data()[k] = lesion >= half ? 1.f : 0.f;
      out.vessels.data()[k] = vessel >= half ? 1.f : 0.f;
      out.body.data()[k] = body >= half ? 1.f : 0.f;
      liver_px += liver >= half, body_px += body >= half;
    }
  out.liver_fraction = body_px ? double(liver_px) / double(body_px) : 0.0;
  // Parenchymal texture, reconstruction kernel and noise with the kernel's noise power spectrum.
  Plane texture = fractal_noise(n, n, n / 8.0, 2, 0.5, gen);
  for (std::size_t k = 0; k < img.v.size(); ++k)
    if (img.v[k] > -200) img.v[k] += 4.f * texture.v[k];
  const double sigma_px = 1.2 / spacing;
  Plane noise(n, n);
  for (auto& v : noise.v) v = float(gen.normal());
  if (venous) {
    Plane blurred = img;
    detail::gaussian_blur(blurred, 0.8 / spacing);
    for (std::size_t k = 0; k < img.v.size(); ++k) img.v[k] += 0.7f * (img.v[k] - blurred.v[k]);
    Plane low = noise;
    detail::gaussian_blur(low, 0.7);
    for (std::size_t k = 0; k < noise.v.size(); ++k) noise.v[k] -= 0.8f * low.v[k];
  } else {
    detail::gaussian_blur(img, sigma_px);
    detail::gaussian_blur(noise, 0.9);
  }
  double var = 0;
  for (float v : noise.v) var += double(v) * v;
  const double target = venous ? gen.uniform(8, 14) : gen.uniform(15, 22);
  const float gain = float(target / std::sqrt(var / double(noise.v.size()) + 1e-12));
  out.image = Tensor<float>::empty({1, n, n});
  const double lo = out.window_center - 0.5 * out.window_width;
  for (std::size_t k = 0; k < img.v.size(); ++k) {
    const float h = std::max(-1024.f, img.v[k] + (out.body.data()[k] > 0 ? gain * noise.v[k] : 0.3f * gain * noise.v[k]));
    out.hu.data()[k] = h;
    out.image.data()[k] = float(std::clamp((h - lo) / out.window_width, 0.0, 1.0));
  }
  return out;
}

/// `count` slices of `domain` as a Dataset (image = windowed slice, mask = liver, fov = body), sample i
/// from `generate_ct(domain, SyntheticDataset::sample_seed(seed, domain_name(domain), i), options)`.
inline SyntheticDataset ct_dataset(CtDomain domain, std::int64_t count, std::uint64_t seed, CtOptions options = {}) {
  const std::string name = domain_name(domain);
  return SyntheticDataset(name, count, seed, [domain, options, name](std::int64_t index, std::uint64_t sample_seed) {
    CtSlice s = generate_ct(domain, sample_seed, options);
    std::string id = std::to_string(index);
    id.insert(0, id.size() < 4 ? 4 - id.size() : 0, '0');
    return Sample{s.image, s.liver, s.body, name + "_" + id, name};
  });
}

}  // namespace gkd::data
