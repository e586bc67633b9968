// SPDX-License-Identifier: Apache-2.0
// Augmentation: flips/rot90 are exact permutations, geometric ops keep image and masks aligned and
// binary, photometric ops leave masks alone, views differ and are reproducible from a seed.
#include <catch2/catch.hpp>

#include <cmath>

#include <gkd/data/augment.hpp>

using namespace gkd::data;

namespace {

// A 3-channel sample whose channel 0 equals the mask (smooth blobs), channel 1 a ramp, channel 2 the fov.
Sample mask_coloured(std::int64_t h, std::int64_t w) {
  Sample s{gkd::Tensor<float>::empty({3, h, w}), gkd::Tensor<float>::zeros({h, w}), gkd::Tensor<float>::zeros({h, w}), "probe", "test"};
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x) {
      const double v = std::sin(0.21 * double(x)) + std::cos(0.17 * double(y)) + 0.5 * std::sin(0.05 * double(x * y));
      const float m = v > 0.6 ? 1.f : 0.f;
      const float f = std::hypot(double(x) - 0.5 * double(w), double(y) - 0.5 * double(h)) < 0.45 * double(std::min(h, w)) ? 1.f : 0.f;
      s.mask.at({y, x}) = m;
      s.fov.at({y, x}) = f;
      s.image.at({0, y, x}) = m;
      s.image.at({1, y, x}) = float(y * w + x) / float(h * w);
      s.image.at({2, y, x}) = f;
    }
  return s;
}

bool identical(const gkd::Tensor<float>& a, const gkd::Tensor<float>& b) {
  if (a.shape() != b.shape()) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a.data()[i] != b.data()[i]) return false;
  return true;
}

bool binary(const gkd::Tensor<float>& t) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (t.data()[i] != 0.f && t.data()[i] != 1.f) return false;
  return true;
}

// Pixels where channel `c` of the image, thresholded at 0.5, disagrees with `m`; every disagreement must
// be on a boundary of m (a 4-neighbour of different value), otherwise it is counted in `off_boundary`.
struct Agreement {
  std::int64_t disagree = 0, off_boundary = 0, total = 0;
};
Agreement agreement(const Sample& s, std::int64_t c, const gkd::Tensor<float>& m) {
  Agreement a;
  const std::int64_t h = s.height(), w = s.width();
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x) {
      ++a.total;
      const float mv = m.at({y, x});
      if ((s.image.at({c, y, x}) >= 0.5f) == (mv == 1.f)) continue;
      ++a.disagree;
      bool edge = false;
      for (auto [dy, dx] : {std::pair{-1, 0}, {1, 0}, {0, -1}, {0, 1}}) {
        const std::int64_t yy = y + dy, xx = x + dx;
        edge = edge || (yy >= 0 && xx >= 0 && yy < h && xx < w && m.at({yy, xx}) != mv);
      }
      a.off_boundary += !edge;
    }
  return a;
}

}  // namespace

TEST_CASE("flip and rot90 are exact pixel permutations applied alike to image and masks", "[synth]") {
  const Sample s = mask_coloured(6, 9);
  const auto hflip = AugmentPipeline().then(flip(1.0, 0.0));
  const Sample f = hflip.apply(s, 1);
  for (std::int64_t y = 0; y < 6; ++y)
    for (std::int64_t x = 0; x < 9; ++x) {
      CHECK(f.image.at({1, y, x}) == s.image.at({1, y, 8 - x}));
      CHECK(f.mask.at({y, x}) == s.mask.at({y, 8 - x}));
    }
  CHECK(identical(hflip.apply(f, 2).image, s.image));  // twice = identity

  // rot90 until k = 1 is drawn; compare with numpy's rot90: out[i][j] = in[j][W-1-i]
  const auto rot = AugmentPipeline().then(rot90());
  bool seen[4] = {false, false, false, false};
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    const Sample r = rot.apply(s, seed);
    int k = -1;
    if (r.height() == 6 && identical(r.image, s.image)) k = 0;
    if (r.height() == 9 && r.image.at({1, 0, 0}) == s.image.at({1, 0, 8})) k = 1;
    if (r.height() == 6 && r.image.at({1, 0, 0}) == s.image.at({1, 5, 8})) k = 2;
    if (r.height() == 9 && r.image.at({1, 0, 0}) == s.image.at({1, 5, 0})) k = 3;
    REQUIRE(k >= 0);
    seen[k] = true;
    for (std::int64_t i = 0; i < r.height(); ++i)
      for (std::int64_t j = 0; j < r.width(); ++j) {
        float expect = 0, expect_mask = 0;
        if (k == 0) expect = s.image.at({1, i, j}), expect_mask = s.mask.at({i, j});
        if (k == 1) expect = s.image.at({1, j, 8 - i}), expect_mask = s.mask.at({j, 8 - i});
        if (k == 2) expect = s.image.at({1, 5 - i, 8 - j}), expect_mask = s.mask.at({5 - i, 8 - j});
        if (k == 3) expect = s.image.at({1, 5 - j, i}), expect_mask = s.mask.at({5 - j, i});
        REQUIRE(r.image.at({1, i, j}) == expect);
        REQUIRE(r.mask.at({i, j}) == expect_mask);
      }
  }
  CHECK((seen[0] && seen[1] && seen[2] && seen[3]));
}

TEST_CASE("affine, elastic and crop keep image and masks aligned, masks stay binary", "[synth]") {
  const Sample s = mask_coloured(96, 96);
  const std::vector<std::pair<const char*, AugmentPipeline>> ops{
      {"affine", AugmentPipeline().then(affine({.max_rotation_deg = 25, .scale = {0.8, 1.2}, .max_shear_deg = 8}))},
      {"elastic", AugmentPipeline().then(elastic({.rms_px = 3.0, .sigma = 6.0}))},
      {"crop", AugmentPipeline().then(random_crop(64, 48, 0.5))},
      {"all", default_augmentation()}};
  for (const auto& [name, pipe] : ops)
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      const Sample a = pipe.apply(s, seed);
      INFO(name << " seed " << seed);
      CHECK(binary(a.mask));
      CHECK(binary(a.fov));
      REQUIRE(a.mask.shape() == gkd::Shape{a.height(), a.width()});
      if (std::string(name) != "all") {  // the photometric ops of "all" change channel 0 too
        const Agreement m = agreement(a, 0, a.mask), f = agreement(a, 2, a.fov);
        CHECK(m.off_boundary == 0);
        CHECK(f.off_boundary == 0);
        CHECK(double(m.disagree) / double(m.total) < 0.03);
        CHECK(double(f.disagree) / double(f.total) < 0.03);
      }
    }
  // the crop is an exact window
  const Sample c = AugmentPipeline().then(random_crop(64, 48)).apply(s, 9);
  const float v = c.image.at({1, 0, 0});
  const std::int64_t origin = std::int64_t(std::lround(double(v) * 96 * 96));
  CHECK(identical(c.mask, s.mask.narrow(0, origin / 96, 64).narrow(1, origin % 96, 48).contiguous()));
}

TEST_CASE("photometric ops change the image only and keep it in [0, 1]", "[synth]") {
  const Sample s = mask_coloured(32, 32);
  const auto pipe = AugmentPipeline()
                        .then(gamma({0.5, 2.0}))
                        .then(contrast({1.5, 2.0}))
                        .then(brightness({0.1, 0.3}))
                        .then(gaussian_blur({0.5, 1.0}))
                        .then(gaussian_noise({0.05, 0.1}));
  const Sample a = pipe.apply(s, 3);
  CHECK(identical(a.mask, s.mask));
  CHECK(identical(a.fov, s.fov));
  CHECK_FALSE(identical(a.image, s.image));
  float lo = 1, hi = 0;
  for (std::int64_t i = 0; i < a.image.numel(); ++i) lo = std::min(lo, a.image.data()[i]), hi = std::max(hi, a.image.data()[i]);
  CHECK(lo >= 0.f);
  CHECK(hi <= 1.f);
  // the input was not modified
  CHECK(identical(s.image, mask_coloured(32, 32).image));
}

TEST_CASE("views differ from each other and are reproducible from the seed", "[synth]") {
  const Sample s = mask_coloured(48, 48);
  const auto pipe = default_augmentation();
  const auto v1 = pipe.views(s, 4, 77);
  const auto v2 = pipe.views(s, 4, 77);
  const auto v3 = pipe.views(s, 4, 78);
  REQUIRE(v1.size() == 4);
  for (int i = 0; i < 4; ++i) {
    CHECK(identical(v1[std::size_t(i)].image, v2[std::size_t(i)].image));
    CHECK(identical(v1[std::size_t(i)].mask, v2[std::size_t(i)].mask));
    CHECK_FALSE(identical(v1[std::size_t(i)].image, v3[std::size_t(i)].image));
    for (int j = 0; j < i; ++j) CHECK_FALSE(identical(v1[std::size_t(i)].image, v1[std::size_t(j)].image));
  }
  CHECK(pipe.size() == 9);
}

TEST_CASE("augmentations reject bad parameters and samples", "[synth]") {
  CHECK_THROWS_AS(flip(1.5), gkd::Error);
  CHECK_THROWS_AS(gamma({2.0, 1.0}), gkd::Error);
  CHECK_THROWS_AS(gaussian_blur({-1.0, 1.0}), gkd::Error);
  CHECK_THROWS_AS(affine({.scale = {0.0, 1.0}}), gkd::Error);
  CHECK_THROWS_AS(elastic({.rms_px = 1.0, .sigma = 0.0}), gkd::Error);
  CHECK_THROWS_AS(AugmentPipeline().then(flip(), 2.0), gkd::Error);
  const Sample s = mask_coloured(16, 16);
  CHECK_THROWS_WITH(AugmentPipeline().then(random_crop(32, 8)).apply(s, 0), Catch::Contains("smaller than the crop"));
  Sample bad = s;
  bad.mask = gkd::Tensor<float>::zeros({15, 16});
  CHECK_THROWS_WITH(AugmentPipeline().then(flip()).apply(bad, 0), Catch::Contains("does not match image"));
}
