// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Synthetic colour fundus images with exact vessel masks, in three camera domains with disjoint
/// appearance ranges (docs/data.md §2.2): the default, labelled data of gkd's cross-domain experiments.
///
/// Geometry (canonical frame, unit = image width, FOV disc of radius 0.47 at the centre): an optic disc
/// (OD) 0.15–0.19 nasal of the centre (left or right eye), the fovea 2.5 OD diameters temporal of it.
/// Six to eight vessel trees (superior/inferior artery and vein along the temporal arcades, plus nasal
/// roots) grow by space colonization towards Poisson-disc attractors whose density rises with the
/// distance from the fovea (none in the foveal avascular zone); arteries and veins take turns on the
/// shared attractors so that they interleave. Radii follow Murray's law (γ ∈ [2.7, 3.0], veins' leaves
/// 1.2× the arteries'). The mask is exact by construction: a pixel is vessel when at least half of its
/// 4×4 subsamples lie inside a capsule (distance to a segment < radius × s). The single global radius
/// scale `s` (within [0.35, 2]) is the calibration: it is chosen per image so that the vessel fraction
/// inside the FOV equals a target drawn from the domain's range (all within 8–16%; DRIVE 12.6%,
/// CHASE_DB1 10.0%), so thin vessels vanish at small output sizes exactly as they would on a camera.
///
/// Appearance (linear RGB): background colour × vignetting and bias field × choroidal texture, a bright
/// OD with a brighter cup, a dark macula, vessels by Beer–Lambert attenuation with a Gaussian cross
/// section (green attenuated most, veins darker), central light reflex on wide vessels, domain-specific
/// distractor lesions, PSF blur, Poisson–Gaussian noise, gamma, JPEG-like 8×8 DCT quantisation, black
/// outside the FOV.
///
/// | domain | FOV | zoom | colour | vignetting | k_G | reflex | PSF σ | noise | JPEG | distractors |
/// |---|---|---|---|---|---|---|---|---|---|---|
/// | `retina_a` (DRIVE-like) | disc r 0.46 | 1.0 | orange | 0.25 | 0.55–0.70 | none | 0.8–1.0 | 0.010 | 75 | small bright spots |
/// | `retina_b` (STARE-like) | disc r 0.49 cut at ±0.42 | 1.25 | saturated, bright | 0.35 | 0.45–0.60 | weak | 1.2–1.6 | 0.020 | 90 | exudates, haemorrhages |
/// | `retina_c` (CHASE-like) | disc r 0.43 | 1.5 | dark brown | 0.55 one-sided | 0.35–0.50 | strong | 1.5–2.2 | 0.015 | 85 | none |
/// (PSF σ in pixels of a 565-pixel-wide image, scaled with the output size.)
///
/// @code
/// gkd::data::RetinaImage r = gkd::data::generate_retina(gkd::data::RetinaDomain::A, /*seed=*/7, {.size = 256});
/// // r.image [3, 256, 256] in [0, 1]; r.vessels and r.fov [256, 256] exactly 0/1; r.vessel_fraction ≈ 0.12
/// auto train = gkd::data::retina_dataset(gkd::data::RetinaDomain::A, /*count=*/100, /*seed=*/1);
/// gkd::data::Sample s = train.get(3);   // the same sample on every call, from any thread
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

/// The three synthetic fundus-camera domains.
enum class RetinaDomain { A, B, C };

/// "retina_a", "retina_b", "retina_c".
inline std::string domain_name(RetinaDomain d) {
  return d == RetinaDomain::A ? "retina_a" : d == RetinaDomain::B ? "retina_b" : "retina_c";
}

/// Parses "retina_a"/"a"/"A" (and b, c); throws gkd::Error naming the accepted values otherwise.
inline RetinaDomain parse_retina_domain(const std::string& s) {
  if (s == "retina_a" || s == "a" || s == "A") return RetinaDomain::A;
  if (s == "retina_b" || s == "b" || s == "B") return RetinaDomain::B;
  if (s == "retina_c" || s == "c" || s == "C") return RetinaDomain::C;
  GKD_FAIL("parse_retina_domain", "unknown retina domain '" << s << "' (expected retina_a, retina_b or retina_c)");
}

/// The appearance and acquisition parameters of a domain (ranges are sampled uniformly per image).
struct RetinaDomainParams {
  double fov_radius;                 ///< FOV disc radius, fraction of the output width
  double fov_cut;                    ///< rows farther than this from the centre (fraction of height) are outside
  double zoom;                       ///< magnification relative to domain A (vessel width multiplier)
  std::array<double, 3> background;  ///< c_bg (linear RGB), jittered ±0.025 per channel
  double vignetting;                 ///< a_v
  double one_sided;                  ///< amplitude of a linear left/right illumination gradient
  double bias;                       ///< amplitude of the smooth random bias field
  double texture;                    ///< a_t, choroidal texture amplitude
  std::array<double, 2> k_green;     ///< green-channel vessel attenuation range
  double reflex;                     ///< central light reflex strength on vessels wider than 2 px
  std::array<double, 2> psf_sigma;   ///< PSF σ range, pixels of a 565-wide image
  double noise;                      ///< Gaussian noise σ (plus as much signal-dependent noise)
  double gamma;                      ///< output = linear^gamma
  int jpeg_quality;
  std::array<double, 2> vessel_fraction;  ///< calibration target range inside the FOV
  int bright_spots, exudates, haemorrhages;  ///< maximum distractor counts
};

/// The parameter table of a domain (see the file comment).
inline RetinaDomainParams retina_domain_params(RetinaDomain d) {
  switch (d) {
    case RetinaDomain::A:
      return {0.46, 1.0, 1.0, {0.80, 0.38, 0.16}, 0.25, 0.0, 0.05, 0.04, {0.55, 0.70}, 0.0, {0.8, 1.0}, 0.010, 0.85, 75,
              {0.115, 0.140}, 3, 0, 0};
    case RetinaDomain::B:
      return {0.49, 0.42, 1.25, {0.92, 0.52, 0.27}, 0.35, 0.0, 0.10, 0.06, {0.45, 0.60}, 0.15, {1.2, 1.6}, 0.020, 0.70, 90,
              {0.100, 0.130}, 0, 8, 5};
    case RetinaDomain::C:
      return {0.43, 1.0, 1.5, {0.55, 0.30, 0.18}, 0.55, 0.30, 0.08, 0.03, {0.35, 0.50}, 0.35, {1.5, 2.2}, 0.015, 1.0, 85,
              {0.090, 0.115}, 0, 0, 0};
  }
  GKD_FAIL("retina_domain_params", "unknown domain");
}

/// Output size and quality settings.
struct RetinaOptions {
  int size = 512;        ///< output width and height in pixels (>= 32)
  int supersample = 4;   ///< subsamples per pixel side for the exact mask and soft edges (1..8)
};

/// A generated fundus image with its labels.
struct RetinaImage {
  Tensor<float> image;      ///< [3, size, size], RGB in [0, 1]
  Tensor<float> vessels;    ///< [size, size], exactly 0/1, zero outside the FOV
  Tensor<float> arteries;   ///< [size, size], 0/1, the artery subset of `vessels`
  Tensor<float> fov;        ///< [size, size], exactly 0/1
  double vessel_fraction = 0;  ///< vessel pixels / FOV pixels
  double radius_scale = 0;     ///< the calibrated global radius scale s
};

namespace detail {

struct RetinaGeometry {
  double od_x, od_y, od_r, fovea_x, fovea_y, side;
  std::vector<TreeNode> nodes;
};

/// Trees of one eye in the canonical frame (independent of the output size and domain).
inline RetinaGeometry retina_geometry(Generator& gen) {
  RetinaGeometry g;
  g.side = gen.uniform() < 0.5 ? -1.0 : 1.0;  // +1: OD right of the centre
  g.od_x = 0.5 + g.side * gen.uniform(0.15, 0.19);
  g.od_y = 0.5 + gen.uniform(-0.03, 0.03);
  g.od_r = gen.uniform(0.06, 0.075);
  g.fovea_x = g.od_x - g.side * 2.5 * 2 * g.od_r;
  g.fovea_y = g.od_y + gen.uniform(0.01, 0.035);
  const double fov_r = 0.47, faz = 0.04;

  // Attractors: dart throwing with a minimum distance, density rising with the distance from the fovea.
  std::vector<std::array<double, 2>> attractors;
  const double min_d = 0.019, cell = min_d;
  const int gn = int(1.0 / cell) + 1;
  std::vector<std::vector<int>> grid(std::size_t(gn) * gn);
  for (int t = 0; t < 9000 && attractors.size() < 1000; ++t) {
    const double x = gen.uniform(0.5 - fov_r, 0.5 + fov_r), y = gen.uniform(0.5 - fov_r, 0.5 + fov_r);
    const double accept = gen.uniform();
    if (std::hypot(x - 0.5, y - 0.5) > fov_r - 0.005) continue;
    const double df = std::hypot(x - g.fovea_x, y - g.fovea_y);
    if (df < faz + 0.01 || std::hypot(x - g.od_x, y - g.od_y) < g.od_r * 0.8) continue;
    if (accept > std::min(1.0, 0.25 + df / 0.25)) continue;
    const int cx = std::clamp(int(x / cell), 0, gn - 1), cy = std::clamp(int(y / cell), 0, gn - 1);
    bool close = false;
    for (int j = std::max(0, cy - 1); j <= std::min(gn - 1, cy + 1) && !close; ++j)
      for (int i = std::max(0, cx - 1); i <= std::min(gn - 1, cx + 1) && !close; ++i)
        for (int a : grid[std::size_t(j) * gn + i])
          if (std::hypot(attractors[std::size_t(a)][0] - x, attractors[std::size_t(a)][1] - y) < min_d) close = true;
    if (close) continue;
    grid[std::size_t(cy) * gn + cx].push_back(int(attractors.size()));
    attractors.push_back({x, y});
  }

  // Temporal arcades: guided trunks along half-ellipses around the fovea (artery and vein slightly apart).
  const double step = 0.005;
  const double cx = g.fovea_x, cy = g.fovea_y;  // the arcades encircle the macula
  const double ax = std::abs(g.od_x - cx);
  int tree = 0;
  for (int vertical : {-1, 1})
    for (int vein = 0; vein < 2; ++vein, ++tree) {
      const double by = gen.uniform(0.16, 0.21) + 0.02 * vein;
      const double sweep = gen.uniform(0.62, 0.82) * std::numbers::pi;
      int parent = -1;
      double theta = 0.0;
      double px = g.od_x, py = g.od_y;
      TreeNode root;
      root.x = px, root.y = py, root.tree = tree;
      g.nodes.push_back(root);
      parent = int(g.nodes.size()) - 1;
      const double wobble = gen.uniform(0.0, 2 * std::numbers::pi);
      int arcade_index = int(gen.uniform(0.0, 12.0));
      while (theta < sweep) {
        theta += step / std::max(0.05, std::hypot(ax * std::sin(theta), by * std::cos(theta)));
        const double jitter = 0.006 * std::sin(9 * theta + wobble);
        const double x = cx + g.side * (ax + jitter) * std::cos(theta);
        const double y = cy + vertical * (by + jitter) * std::sin(theta);
        if (std::hypot(x - 0.5, y - 0.5) > fov_r - 0.01) break;
        TreeNode n;
        n.x = x, n.y = y, n.parent = parent, n.tree = tree;
        n.can_sprout = ++arcade_index % 12 == 0;  // side branches leave the arcades at intervals
        n.since_branch = 1000;
        const double len = std::hypot(x - px, y - py) + 1e-12;
        n.dx = (x - px) / len, n.dy = (y - py) / len;
        auto& pn = g.nodes[std::size_t(parent)];
        if (pn.children++ == 0) pn.first_child = int(g.nodes.size());
        g.nodes.push_back(n);
        parent = int(g.nodes.size()) - 1;
        px = x, py = y;
      }
    }
  // Nasal roots: short stems leaving the OD towards the nasal side.
  const int nasal = 2 + int(gen.uniform(0.0, 3.0));
  for (int k = 0; k < nasal; ++k, ++tree) {
    const double angle = (k + 0.5) / nasal * std::numbers::pi - std::numbers::pi / 2 + gen.uniform(-0.2, 0.2);
    const double dx = g.side * std::cos(angle), dy = std::sin(angle);
    int parent = -1;
    for (int s = 0; s < 6; ++s) {
      TreeNode n;
      n.x = g.od_x + dx * (0.3 * g.od_r + s * step), n.y = g.od_y + dy * (0.3 * g.od_r + s * step);
      n.parent = parent, n.tree = tree, n.dx = dx, n.dy = dy;
      if (parent >= 0 && g.nodes[std::size_t(parent)].children++ == 0) g.nodes[std::size_t(parent)].first_child = int(g.nodes.size());
      g.nodes.push_back(n);
      parent = int(g.nodes.size()) - 1;
    }
  }
  Colonization p;
  p.influence = 0.08, p.kill = 0.02, p.step = step, p.max_iterations = 900, p.branch_gap = 5;
  colonize(g.nodes, attractors, p, 2, [](int t) { return t % 2; },
           [fov_r](double x, double y) { return std::hypot(x - 0.5, y - 0.5) < fov_r + 0.01; }, gen);
  smooth_centrelines(g.nodes, 2);
  const double gamma = gen.uniform(2.7, 3.0);
  murray_radii(g.nodes, 0.0011, gamma, [](int t) { return t % 2 == 1 ? 1.2 : 1.0; });
  return g;
}

inline double gauss2(double dx, double dy, double rx, double ry) { return std::exp(-0.5 * (dx * dx / (rx * rx) + dy * dy / (ry * ry))); }

}  // namespace detail

/// Generates one fundus image of `domain`, deterministic in (domain, seed, options).
/// @throws gkd::Error for a size below 32 or a supersampling factor outside 1..8.
inline RetinaImage generate_retina(RetinaDomain domain, std::uint64_t seed, const RetinaOptions& opt = {}) {
  GKD_CHECK(opt.size >= 32 && opt.size <= 8192, "generate_retina", "size must be in [32, 8192], got " << opt.size);
  GKD_CHECK(opt.supersample >= 1 && opt.supersample <= 8, "generate_retina",
            "supersample must be in [1, 8], got " << opt.supersample);
  using namespace detail;
  const RetinaDomainParams dp = retina_domain_params(domain);
  Generator geo_gen(mix_seed(seed, 1));  // geometry does not depend on the domain's draws
  Generator gen(mix_seed(seed, 2 + std::uint64_t(domain)));
  const RetinaGeometry geo = retina_geometry(geo_gen);
  const int n = opt.size, ss = opt.supersample;
  const double units_per_px = (0.47 / dp.zoom) / (dp.fov_radius * n);  // canonical units per output pixel
  const double origin = 0.5 - 0.5 * n * units_per_px;                    // canonical coordinate of pixel edge 0

  // FOV (exact, pixel centres) and the vessel field on the supersampled grid.
  Plane fov(n, n);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double dx = (x + 0.5) / n - 0.5, dy = (y + 0.5) / n - 0.5;
      fov.at(x, y) = (std::hypot(dx, dy) < dp.fov_radius && std::abs(dy) < dp.fov_cut) ? 1.f : 0.f;
    }
  constexpr double max_scale = 2.0, reach = 2 * max_scale;  // profile tails end at u = 2 s
  const VesselField field = vessel_field(geo.nodes, n * ss, n * ss, origin, origin, 1.0 / (units_per_px / ss), reach);

  // Per pixel: the median-rank subsample distance m (vessel iff m < s), then s from the target fraction.
  const int k = (ss * ss + 1) / 2 - 1;
  std::vector<float> m(std::size_t(n) * n), block(std::size_t(ss * ss));
  std::vector<float> inside;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      for (int j = 0; j < ss; ++j)
        for (int i = 0; i < ss; ++i) block[std::size_t(j * ss + i)] = field.u[std::size_t(y * ss + j) * field.w + std::size_t(x * ss + i)];
      std::nth_element(block.begin(), block.begin() + k, block.end());
      m[std::size_t(y) * n + x] = block[std::size_t(k)];
      if (fov.at(x, y) > 0) inside.push_back(block[std::size_t(k)]);
    }
  GKD_CHECK(!inside.empty(), "generate_retina", "empty field of view at size " << n);
  const double target = gen.uniform(dp.vessel_fraction[0], dp.vessel_fraction[1]);
  std::sort(inside.begin(), inside.end());
  const std::size_t idx = std::min(inside.size() - 1, std::size_t(std::max(1.0, std::round(target * double(inside.size())))));
  const double s = std::clamp(0.5 * (double(inside[idx - 1]) + double(inside[idx])), 0.35, max_scale);

  RetinaImage out;
  out.radius_scale = s;
  out.vessels = Tensor<float>::zeros({n, n});
  out.arteries = Tensor<float>::zeros({n, n});
  out.fov = Tensor<float>::zeros({n, n});
  std::int64_t vessel_px = 0, fov_px = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const std::size_t i = std::size_t(y) * n + x;
      const bool in_fov = fov.at(x, y) > 0;
      out.fov.data()[i] = in_fov ? 1.f : 0.f;
      fov_px += in_fov;
      if (in_fov && m[i] < s) {
        out.vessels.data()[i] = 1.f;
        ++vessel_px;
        // artery if most covered subsamples belong to arteries (even trees)
        int art = 0, cov = 0;
        for (int j = 0; j < ss; ++j)
          for (int q = 0; q < ss; ++q) {
            const std::size_t f = std::size_t(y * ss + j) * field.w + std::size_t(x * ss + q);
            if (field.u[f] < s) ++cov, art += field.tree[f] % 2 == 0;
          }
        out.arteries.data()[i] = 2 * art >= cov ? 1.f : 0.f;
      }
    }
  out.vessel_fraction = double(vessel_px) / double(fov_px);

  // Appearance.
  std::array<double, 3> bg;
  for (int c = 0; c < 3; ++c) bg[std::size_t(c)] = dp.background[std::size_t(c)] + gen.uniform(-0.025, 0.025);
  const double k_g = gen.uniform(dp.k_green[0], dp.k_green[1]);
  const double psf = gen.uniform(dp.psf_sigma[0], dp.psf_sigma[1]) * n / 565.0;
  const double fovea_depth = gen.uniform(0.15, 0.30);
  const double grad_angle = gen.uniform(0.0, 2 * std::numbers::pi);
  Plane bias = fractal_noise(n, n, 3.0, 2, 0.5, gen);
  Plane texture = fractal_noise(n, n, 24.0, 3, 0.55, gen);
  const std::array<double, 3> k_artery{0.22 * k_g, 0.8 * k_g, 0.45 * k_g}, k_vein{0.45 * k_g, 1.2 * k_g, 0.75 * k_g};
  struct Blob { double x, y, r, amp; int kind; };
  std::vector<Blob> blobs;
  const auto add_blobs = [&](int max_count, double r0, double r1, int kind) {
    const int count = max_count > 0 ? int(gen.uniform(0.0, max_count + 1.0)) : 0;
    for (int b = 0; b < count; ++b) {
      const double rho = 0.4 * std::sqrt(gen.uniform()), phi = gen.uniform(0.0, 2 * std::numbers::pi);
      blobs.push_back({0.5 + rho * std::cos(phi), 0.5 + rho * std::sin(phi), gen.uniform(r0, r1), gen.uniform(0.5, 1.0), kind});
    }
  };
  add_blobs(dp.bright_spots, 0.004, 0.008, 0);
  add_blobs(dp.exudates, 0.006, 0.02, 0);
  add_blobs(dp.haemorrhages, 0.008, 0.022, 1);

  std::array<Plane, 3> rgb{Plane(n, n), Plane(n, n), Plane(n, n)};
  const double inv_ss2 = 1.0 / (ss * ss);
  const double wide = 2.0 * ss;  // central reflex on vessels wider than 2 px (radius in subsample px > ss)
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double ux = origin + (x + 0.5) * units_per_px, uy = origin + (y + 0.5) * units_per_px;
      const double rho = std::hypot((x + 0.5) / n - 0.5, (y + 0.5) / n - 0.5) / dp.fov_radius;
      const double dirx = std::cos(grad_angle), diry = std::sin(grad_angle);
      const double lin = ((x + 0.5) / n - 0.5) * dirx + ((y + 0.5) / n - 0.5) * diry;
      double light = (1 - dp.vignetting * std::pow(std::min(rho, 1.2), 2.5)) * (1 + dp.bias * bias.at(x, y)) *
                     (1 + dp.one_sided * 2 * lin);
      light *= 1 + dp.texture * texture.at(x, y);
      const double od = gauss2(ux - geo.od_x, uy - geo.od_y, 0.55 * geo.od_r, 0.62 * geo.od_r);
      const double cup = gauss2(ux - geo.od_x - 0.1 * geo.od_r * geo.side, uy - geo.od_y, 0.22 * geo.od_r, 0.25 * geo.od_r);
      const double mac = gauss2(ux - geo.fovea_x, uy - geo.fovea_y, 0.05, 0.05);
      std::array<double, 3> v{};
      for (int c = 0; c < 3; ++c) {
        const double od_col = c == 0 ? 0.5 : c == 1 ? 0.9 : 0.7;
        v[std::size_t(c)] = bg[std::size_t(c)] * light * (1 - fovea_depth * mac) * (1 + 1.2 * od_col * od) + 0.25 * cup;
      }
      // Vessel transmittance, averaged over the subsamples.
      std::array<double, 3> t{0, 0, 0};
      for (int j = 0; j < ss; ++j)
        for (int q = 0; q < ss; ++q) {
          const std::size_t f = std::size_t(y * ss + j) * field.w + std::size_t(x * ss + q);
          const double u = field.u[f] / s;
          if (!(u < 2.0)) {
            for (auto& tc : t) tc += 1;
            continue;
          }
          const double profile = std::exp(-0.5 * u * u / (0.8 * 0.8));
          const double reflex = field.radius[f] * s > wide ? dp.reflex * std::exp(-0.5 * u * u / (0.18 * 0.18)) : 0.0;
          const auto& kk = field.tree[f] % 2 == 0 ? k_artery : k_vein;
          for (int c = 0; c < 3; ++c) t[std::size_t(c)] += std::exp(-kk[std::size_t(c)] * profile) * (1 + reflex);
        }
      for (int c = 0; c < 3; ++c) v[std::size_t(c)] *= t[std::size_t(c)] * inv_ss2;
      for (const auto& b : blobs) {
        const double g = gauss2(ux - b.x, uy - b.y, b.r, b.r) * b.amp;
        if (g < 1e-3) continue;
        if (b.kind == 0) {
          v[0] += 0.35 * g, v[1] += 0.30 * g, v[2] += 0.08 * g;
        } else {
          v[0] *= 1 - 0.35 * g, v[1] *= 1 - 0.6 * g, v[2] *= 1 - 0.5 * g;
        }
      }
      for (int c = 0; c < 3; ++c) rgb[std::size_t(c)].at(x, y) = float(v[std::size_t(c)]);
    }
  // Acquisition: PSF, noise, gamma, soft FOV edge, JPEG.
  for (auto& p : rgb) detail::gaussian_blur(p, psf);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double dx = (x + 0.5) / n - 0.5, dy = (y + 0.5) / n - 0.5;
      const double edge_px = std::min(dp.fov_radius - std::hypot(dx, dy), dp.fov_cut - std::abs(dy)) * n;
      const double soft = std::clamp(0.5 + edge_px / 1.5, 0.0, 1.0);
      for (auto& p : rgb) {
        double v = std::max(0.0, double(p.at(x, y)));
        v += gen.normal(0.0, dp.noise * std::sqrt(1.0 + v));
        v = std::pow(std::clamp(v, 0.0, 1.0), dp.gamma) * soft;
        p.at(x, y) = float(v);
      }
    }
  jpeg_artifacts({&rgb[0], &rgb[1], &rgb[2]}, dp.jpeg_quality);
  out.image = Tensor<float>::empty({3, n, n});
  for (int c = 0; c < 3; ++c) std::copy(rgb[std::size_t(c)].v.begin(), rgb[std::size_t(c)].v.end(), out.image.data() + std::size_t(c) * n * n);
  return out;
}

/// `count` fundus images of `domain` as a Dataset: sample i is `generate_retina(domain,
/// SyntheticDataset::sample_seed(seed, domain_name(domain), i), options)` with mask = vessels, named
/// "<domain>_<i, 4 digits>".
inline SyntheticDataset retina_dataset(RetinaDomain domain, std::int64_t count, std::uint64_t seed, RetinaOptions options = {}) {
  const std::string name = domain_name(domain);
  return SyntheticDataset(name, count, seed, [domain, options, name](std::int64_t index, std::uint64_t sample_seed) {
    RetinaImage r = generate_retina(domain, sample_seed, options);
    std::string id = std::to_string(index);
    id.insert(0, id.size() < 4 ? 4 - id.size() : 0, '0');
    return Sample{r.image, r.vessels, r.fov, name + "_" + id, name};
  });
}

}  // namespace gkd::data
