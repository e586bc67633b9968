// SPDX-License-Identifier: Apache-2.0
// The synthetic CT generator: determinism, exact binary masks consistent with each other and with the
// HU rendering, plausible liver fraction, the two scanner domains' contrast and noise, bad input.
#include <catch2/catch.hpp>

#include <cmath>

#include <gkd/data/synthetic_ct.hpp>

using gkd::data::CtDomain;

namespace {

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

// Mean and standard deviation of HU over the pixels where `where` is 1 and `exclude` is 0 (eroded by 2 px
// so that partial-volume borders do not enter).
std::pair<double, double> hu_stats(const gkd::data::CtSlice& s, const gkd::Tensor<float>& where, const gkd::Tensor<float>& exclude) {
  const int n = int(where.size(0));
  double sum = 0, sq = 0, count = 0;
  for (int y = 2; y < n - 2; ++y)
    for (int x = 2; x < n - 2; ++x) {
      bool interior = true;
      for (int dy = -2; dy <= 2 && interior; ++dy)
        for (int dx = -2; dx <= 2 && interior; ++dx) {
          const int k = (y + dy) * n + x + dx;
          interior = where.data()[k] == 1.f && exclude.data()[k] == 0.f;
        }
      if (!interior) continue;
      const double h = s.hu.data()[y * n + x];
      sum += h, sq += h * h, ++count;
    }
  REQUIRE(count > 20);
  const double mean = sum / count;
  return {mean, std::sqrt(std::max(0.0, sq / count - mean * mean))};
}

}  // namespace

TEST_CASE("generate_ct is deterministic and seed-dependent", "[synth]") {
  const auto a = gkd::data::generate_ct(CtDomain::Plain, 4, {.size = 96});
  const auto b = gkd::data::generate_ct(CtDomain::Plain, 4, {.size = 96});
  const auto c = gkd::data::generate_ct(CtDomain::Plain, 5, {.size = 96});
  CHECK(identical(a.hu, b.hu));
  CHECK(identical(a.liver, b.liver));
  CHECK_FALSE(identical(a.liver, c.liver));
}

TEST_CASE("CT masks are exact, nested and the liver fraction is plausible", "[synth]") {
  for (auto d : {CtDomain::Venous, CtDomain::Plain})
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      const auto s = gkd::data::generate_ct(d, seed, {.size = 128});
      INFO(gkd::data::domain_name(d) << " seed " << seed << " liver fraction " << s.liver_fraction);
      REQUIRE(s.hu.shape() == gkd::Shape{1, 128, 128});
      for (const auto* m : {&s.liver, &s.lesions, &s.vessels, &s.body}) {
        REQUIRE(m->shape() == gkd::Shape{128, 128});
        CHECK(binary(*m));
      }
      std::int64_t bad = 0, liver = 0, body = 0;
      for (std::int64_t i = 0; i < s.body.numel(); ++i) {
        bad += s.liver.data()[i] > s.body.data()[i];        // liver inside the body
        bad += s.lesions.data()[i] > s.liver.data()[i];     // lesions and vessels inside the liver
        bad += s.vessels.data()[i] > s.liver.data()[i];
        bad += s.body.data()[i] == 0.f && s.hu.data()[i] > -500.f;  // outside the body is air
        liver += s.liver.data()[i] == 1.f, body += s.body.data()[i] == 1.f;
      }
      CHECK(bad == 0);
      CHECK(double(liver) / double(body) == Approx(s.liver_fraction));
      CHECK(s.liver_fraction > 0.05);
      CHECK(s.liver_fraction < 0.40);
      float lo = 1, hi = 0;
      for (std::int64_t i = 0; i < s.image.numel(); ++i) lo = std::min(lo, s.image.data()[i]), hi = std::max(hi, s.image.data()[i]);
      CHECK(lo >= 0.f);
      CHECK(hi <= 1.f);
    }
}

TEST_CASE("CT rendering follows the masks: liver HU per phase, vessels flip contrast, noise per domain", "[synth]") {
  const auto venous = gkd::data::generate_ct(CtDomain::Venous, 1, {.size = 160});
  const auto plain = gkd::data::generate_ct(CtDomain::Plain, 1, {.size = 160});
  const auto [liver_v, noise_v] = hu_stats(venous, venous.liver, venous.vessels);
  const auto [liver_p, noise_p] = hu_stats(plain, plain.liver, plain.vessels);
  INFO("venous liver " << liver_v << " ± " << noise_v << ", plain liver " << liver_p << " ± " << noise_p);
  CHECK(liver_v > 90);
  CHECK(liver_v < 140);
  CHECK(liver_p > 45);
  CHECK(liver_p < 75);
  CHECK(noise_v > 3);
  // the same anatomy (same seed) in both domains, at another pixel spacing
  CHECK(venous.spacing_mm < plain.spacing_mm);
  // vessel pixels are brighter than parenchyma in the venous phase, darker without contrast
  double vv = 0, vp = 0, nv = 0, np = 0;
  for (std::int64_t i = 0; i < venous.vessels.numel(); ++i) {
    if (venous.vessels.data()[i] == 1.f) vv += venous.hu.data()[i], ++nv;
    if (plain.vessels.data()[i] == 1.f) vp += plain.hu.data()[i], ++np;
  }
  REQUIRE(nv > 0);
  REQUIRE(np > 0);
  CHECK(vv / nv > liver_v);
  CHECK(vp / np < liver_p);
}

TEST_CASE("ct_dataset gives windowed images, liver masks and body FOV", "[synth]") {
  const auto set = gkd::data::ct_dataset(CtDomain::Venous, 3, 8, {.size = 64, .supersample = 1});
  const auto s = set.get(1);
  CHECK(s.name == "ct_venous_0001");
  CHECK(s.image.shape() == gkd::Shape{1, 64, 64});
  CHECK(identical(s.image, set.get(1).image));
  gkd::data::check_sample(s, "test");
  CHECK_THROWS_AS(set.get(3), gkd::Error);
  CHECK_THROWS_WITH(gkd::data::generate_ct(CtDomain::Plain, 0, {.size = 8}), Catch::Contains("size must be in [32, 4096]"));
  CHECK_THROWS_WITH(gkd::data::parse_ct_domain("mri"), Catch::Contains("ct_venous or ct_plain"));
  CHECK(gkd::data::parse_ct_domain("plain") == CtDomain::Plain);
}
