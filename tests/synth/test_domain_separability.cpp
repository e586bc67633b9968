// SPDX-License-Identifier: Apache-2.0
// The synthetic domains differ measurably while their labels stay in range: colour moments (per-channel
// mean and standard deviation inside the FOV) separate the retina domains by more than twice their
// within-domain spread, a leave-one-out nearest-centroid classifier on them is ≥ 95% accurate, and every
// image keeps its vessel fraction in 8–16%. Same for the two CT domains on windowed-intensity moments
// inside the liver.
#include <catch2/catch.hpp>

#include <cmath>

#include <gkd/data/synthetic_ct.hpp>
#include <gkd/data/synthetic_retina.hpp>

namespace {

using Features = std::vector<double>;

Features moments(const gkd::Tensor<float>& image, const gkd::Tensor<float>& fov) {
  Features f;
  const std::int64_t plane = fov.numel();
  for (std::int64_t c = 0; c < image.size(0); ++c) {
    double s = 0, q = 0, n = 0;
    for (std::int64_t i = 0; i < plane; ++i)
      if (fov.data()[i] == 1.f) {
        const double v = image.data()[c * plane + i];
        s += v, q += v * v, ++n;
      }
    const double mean = s / n;
    f.push_back(mean);
    f.push_back(std::sqrt(std::max(0.0, q / n - mean * mean)));
  }
  return f;
}

double distance(const Features& a, const Features& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(d);
}

Features centroid(const std::vector<Features>& xs, std::size_t skip = std::size_t(-1)) {
  Features c(xs[0].size(), 0.0);
  double n = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (i == skip) continue;
    for (std::size_t k = 0; k < c.size(); ++k) c[k] += xs[i][k];
    ++n;
  }
  for (auto& v : c) v /= n;
  return c;
}

// Checks separation margin and leave-one-out nearest-centroid accuracy over domains' feature sets.
void require_separable(const std::vector<std::vector<Features>>& domains) {
  std::vector<Features> centroids;
  std::vector<double> spread;
  for (const auto& d : domains) {
    centroids.push_back(centroid(d));
    double s = 0;
    for (const auto& x : d) s = std::max(s, distance(x, centroids.back()));
    spread.push_back(s);
  }
  for (std::size_t a = 0; a < domains.size(); ++a)
    for (std::size_t b = a + 1; b < domains.size(); ++b) {
      const double gap = distance(centroids[a], centroids[b]);
      INFO("domains " << a << " and " << b << ": centroid distance " << gap << ", spreads " << spread[a] << ", " << spread[b]);
      CHECK(gap > 2.0 * std::max(spread[a], spread[b]));
    }
  int correct = 0, total = 0;
  for (std::size_t d = 0; d < domains.size(); ++d)
    for (std::size_t i = 0; i < domains[d].size(); ++i) {
      std::size_t best = 0;
      double best_dist = 1e300;
      for (std::size_t e = 0; e < domains.size(); ++e) {
        const double dist = distance(domains[d][i], e == d ? centroid(domains[e], i) : centroids[e]);
        if (dist < best_dist) best_dist = dist, best = e;
      }
      correct += best == d, ++total;
    }
  INFO("nearest-centroid accuracy " << correct << " / " << total);
  CHECK(double(correct) >= 0.95 * double(total));
}

}  // namespace

TEST_CASE("retina domains are separable by colour moments while vessel fractions stay calibrated", "[synth]") {
  using gkd::data::RetinaDomain;
  std::vector<std::vector<Features>> domains;
  for (auto d : {RetinaDomain::A, RetinaDomain::B, RetinaDomain::C}) {
    domains.emplace_back();
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
      const auto r = gkd::data::generate_retina(d, 1000 + seed, {.size = 96, .supersample = 3});
      INFO(gkd::data::domain_name(d) << " seed " << seed << " vessel fraction " << r.vessel_fraction);
      CHECK(r.vessel_fraction >= 0.08);
      CHECK(r.vessel_fraction <= 0.16);
      domains.back().push_back(moments(r.image, r.fov));
    }
  }
  require_separable(domains);
}

TEST_CASE("CT domains are separable by windowed-intensity moments", "[synth]") {
  using gkd::data::CtDomain;
  std::vector<std::vector<Features>> domains;
  for (auto d : {CtDomain::Venous, CtDomain::Plain}) {
    domains.emplace_back();
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
      const auto s = gkd::data::generate_ct(d, 500 + seed, {.size = 96, .supersample = 2});
      CHECK(s.liver_fraction > 0.05);
      domains.back().push_back(moments(s.image, s.liver));
    }
  }
  require_separable(domains);
}
