// SPDX-License-Identifier: Apache-2.0
// The synthetic fundus generator: determinism, exact binary masks, calibrated vessel fraction per
// domain, vessels darker than their surroundings in the green channel, data-set contract, bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include <gkd/data/synthetic_retina.hpp>

using gkd::data::RetinaDomain;

namespace {

constexpr int kSize = 128;

// Three images per domain at 128×128, generated once and shared by the test cases below.
const std::vector<gkd::data::RetinaImage>& images(RetinaDomain d) {
  static std::map<RetinaDomain, std::vector<gkd::data::RetinaImage>> cache;
  auto& v = cache[d];
  if (v.empty())
    for (std::uint64_t seed = 20; seed < 23; ++seed) v.push_back(gkd::data::generate_retina(d, seed, {.size = kSize}));
  return v;
}

bool binary(const gkd::Tensor<float>& t) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (t.data()[i] != 0.f && t.data()[i] != 1.f) return false;
  return true;
}

bool identical(const gkd::Tensor<float>& a, const gkd::Tensor<float>& b) {
  if (a.shape() != b.shape()) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a.data()[i] != b.data()[i]) return false;
  return true;
}

// Mean green inside the vessel mask, and in the non-vessel FOV pixels within 3 px of a vessel.
std::pair<double, double> green_vessel_and_surround(const gkd::data::RetinaImage& r) {
  const int n = int(r.fov.size(0));
  const float* v = r.vessels.data();
  const float* fov = r.fov.data();
  const float* green = r.image.data() + n * n;
  double sv = 0, nv = 0, sb = 0, nb = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const int i = y * n + x;
      if (fov[i] == 0.f) continue;
      if (v[i] == 1.f) {
        sv += green[i], ++nv;
        continue;
      }
      bool near = false;
      for (int dy = -3; dy <= 3 && !near; ++dy)
        for (int dx = -3; dx <= 3 && !near; ++dx) {
          const int yy = y + dy, xx = x + dx;
          near = yy >= 0 && xx >= 0 && yy < n && xx < n && v[yy * n + xx] == 1.f;
        }
      if (near) sb += green[i], ++nb;
    }
  return {sv / nv, sb / nb};
}

}  // namespace

TEST_CASE("generate_retina is deterministic in (domain, seed, size) and differs across seeds", "[synth]") {
  const auto a = gkd::data::generate_retina(RetinaDomain::B, 11, {.size = 96});
  const auto b = gkd::data::generate_retina(RetinaDomain::B, 11, {.size = 96});
  const auto c = gkd::data::generate_retina(RetinaDomain::B, 12, {.size = 96});
  CHECK(identical(a.image, b.image));
  CHECK(identical(a.vessels, b.vessels));
  CHECK(identical(a.fov, b.fov));
  CHECK_FALSE(identical(a.vessels, c.vessels));
  CHECK_FALSE(identical(a.image, c.image));
}

TEST_CASE("retina masks are exactly binary, vessels lie in the FOV, images in [0, 1]", "[synth]") {
  for (auto d : {RetinaDomain::A, RetinaDomain::B, RetinaDomain::C})
    for (const auto& r : images(d)) {
      REQUIRE(r.image.shape() == gkd::Shape{3, kSize, kSize});
      REQUIRE(r.vessels.shape() == gkd::Shape{kSize, kSize});
      CHECK(binary(r.vessels));
      CHECK(binary(r.fov));
      CHECK(binary(r.arteries));
      std::int64_t outside = 0, arteries_outside_vessels = 0;
      for (std::int64_t i = 0; i < r.fov.numel(); ++i) {
        outside += r.vessels.data()[i] > r.fov.data()[i];
        arteries_outside_vessels += r.arteries.data()[i] > r.vessels.data()[i];
      }
      CHECK(outside == 0);
      CHECK(arteries_outside_vessels == 0);
      float lo = 1, hi = 0;
      for (std::int64_t i = 0; i < r.image.numel(); ++i) lo = std::min(lo, r.image.data()[i]), hi = std::max(hi, r.image.data()[i]);
      CHECK(lo >= 0.f);
      CHECK(hi <= 1.f);
    }
}

TEST_CASE("vessel fraction inside the FOV is within 8-16% for every domain", "[synth]") {
  for (auto d : {RetinaDomain::A, RetinaDomain::B, RetinaDomain::C})
    for (std::size_t seed = 0; seed < images(d).size(); ++seed) {
      const auto& r = images(d)[seed];
      double vessel = 0, fov = 0;
      for (std::int64_t i = 0; i < r.fov.numel(); ++i) vessel += r.vessels.data()[i], fov += r.fov.data()[i];
      INFO(gkd::data::domain_name(d) << " seed " << seed << " fraction " << vessel / fov << " scale " << r.radius_scale);
      CHECK(vessel / fov == Approx(r.vessel_fraction).epsilon(1e-12));
      CHECK(r.vessel_fraction >= 0.08);
      CHECK(r.vessel_fraction <= 0.16);
      // the calibration scale stayed strictly inside its clamp range, i.e. the target was reachable
      CHECK(r.radius_scale > 0.35);
      CHECK(r.radius_scale < 2.0);
    }
}

TEST_CASE("vessel pixels are darker in the green channel than their surroundings", "[synth]") {
  for (auto d : {RetinaDomain::A, RetinaDomain::B, RetinaDomain::C})
    for (std::size_t seed = 0; seed < images(d).size(); ++seed) {
      const auto& r = images(d)[seed];
      const auto [vessel, surround] = green_vessel_and_surround(r);
      INFO(gkd::data::domain_name(d) << " seed " << seed << ": vessel green " << vessel << ", surround " << surround);
      CHECK(vessel < surround - 0.01);
    }
}

TEST_CASE("retina_dataset: samples depend on (seed, domain, index) only", "[synth]") {
  const auto set = gkd::data::retina_dataset(RetinaDomain::C, 5, 42, {.size = 64, .supersample = 2});
  REQUIRE(set.size() == 5);
  const auto s3 = set.get(3);
  const auto again = set.get(3);
  CHECK(s3.name == "retina_c_0003");
  CHECK(s3.domain == "retina_c");
  CHECK(identical(s3.image, again.image));
  CHECK(identical(s3.mask, again.mask));
  CHECK_FALSE(identical(s3.mask, set.get(2).mask));
  gkd::data::check_sample(s3, "test");
  // a larger data set with the same seed has the same first samples
  const auto bigger = gkd::data::retina_dataset(RetinaDomain::C, 9, 42, {.size = 64, .supersample = 2});
  CHECK(identical(bigger.get(3).image, s3.image));
  // another domain under the same seed is another image
  const auto other = gkd::data::retina_dataset(RetinaDomain::A, 5, 42, {.size = 64, .supersample = 2});
  CHECK_FALSE(identical(other.get(3).image, s3.image));
  CHECK_THROWS_AS(set.get(5), gkd::Error);
  CHECK_THROWS_AS(set.get(-1), gkd::Error);
}

TEST_CASE("generate_retina rejects bad options and unknown domain names", "[synth]") {
  CHECK_THROWS_WITH(gkd::data::generate_retina(RetinaDomain::A, 0, {.size = 16}), Catch::Contains("size must be in [32, 8192]"));
  CHECK_THROWS_WITH(gkd::data::generate_retina(RetinaDomain::A, 0, {.size = 64, .supersample = 0}),
                    Catch::Contains("supersample"));
  CHECK(gkd::data::parse_retina_domain("retina_b") == RetinaDomain::B);
  CHECK(gkd::data::parse_retina_domain("c") == RetinaDomain::C);
  CHECK_THROWS_WITH(gkd::data::parse_retina_domain("drive"), Catch::Contains("retina_a, retina_b or retina_c"));
}
