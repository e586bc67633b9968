// SPDX-License-Identifier: Apache-2.0
// Data-set readers: the real CHASE_DB1 in ../shared/data/chasedb1 (skipped with a message when absent),
// small generated sets in every published layout and file format, computed FOV masks, and the errors for
// incomplete or mismatched sets.
#define GKD_IMAGE_IO_IMPLEMENTATION
#include <gkd/data/datasets.hpp>
#include <gkd/data/image_io.hpp>
#include <gkd/metrics/segmentation.hpp>

#include <catch2/catch.hpp>
#include "support/scratch.hpp"
#include <filesystem>
#include <unistd.h>

namespace fs = std::filesystem;
namespace gd = gkd::data;
using gkd::Tensor;

namespace {
const fs::path kChase = fs::path(GKD_SOURCE_DIR).parent_path() / "shared" / "data" / "chasedb1";
fs::path fixture(const char* name) { return fs::path(GKD_SOURCE_DIR) / "tests/fixtures/images" / name; }

struct TempDir : gkd::test::ScratchDir {
  TempDir() : ScratchDir("test_datasets") {}
  fs::path put(const fs::path& rel, const fs::path& source) const {
    fs::create_directories((path / rel).parent_path());
    fs::copy_file(source, path / rel, fs::copy_options::overwrite_existing);
    return path / rel;
  }
  fs::path write(const fs::path& rel, const gd::Image& img) const {
    fs::create_directories((path / rel).parent_path());
    gd::write_image(path / rel, img);
    return path / rel;
  }
};

// pattern_gray binarised the way masks are (0/255-range files: >= 128)
std::vector<float> expected_mask() {
  const gd::Image g = gd::read_image(fixture("pattern_gray.png"));
  std::vector<float> m;
  for (auto v : g.pixels) m.push_back(v >= 128 ? 1.f : 0.f);
  return m;
}

using gkd::test::error_of;
}  // namespace

TEST_CASE("Real CHASE_DB1: layout, counts, sample shapes, vessel fraction, FOV", "[data][real]") {
  if (!fs::exists(kChase)) {
    WARN("skipped: " << kChase << " is absent");
    return;
  }
  const auto report = gd::detect_layout(kChase);
  INFO(report.summary());
  CHECK(report.layout == gd::Layout::chase_db1);
  CHECK(report.ok());
  CHECK(report.samples.at("training") == 14);
  CHECK(report.samples.at("test") == 14);
  const auto train = gd::open_dataset(kChase, {.split = "training"});
  REQUIRE(train.size() == 14);
  const auto s = train.get(0);
  CHECK(s.name == "Image_01L");
  CHECK(s.image.shape() == gkd::Shape{3, 960, 999});
  CHECK(s.mask.shape() == gkd::Shape{960, 999});
  CHECK(s.fov.shape() == gkd::Shape{960, 999});
  double vessels = 0, fov = 0;
  std::int64_t not_binary = 0;
  for (std::int64_t i = 0; i < s.mask.numel(); ++i) {
    const float m = s.mask.data()[i];
    not_binary += m != 0.f && m != 1.f;
    vessels += m * s.fov.data()[i];
    fov += s.fov.data()[i];
  }
  CHECK(not_binary == 0);
  const double fraction = vessels / fov;  // ATTRIBUTION.md: 7.3% to 12.2% per image (first observer)
  CHECK(fraction > 0.07);
  CHECK(fraction < 0.125);
  // the computed FOV agrees with the supplied one
  CHECK(gkd::metrics::dice(gd::compute_fov(s.image), s.fov) > 0.98);
  const auto test = gd::open_dataset(kChase, {.split = "test", .observer = 2});
  CHECK(test.size() == 14);
  CHECK(test.files().front().mask.filename() == "Image_08L_2ndHO.png");
}

TEST_CASE("Generated sets in every layout and format decode to the same pattern", "[data]") {
  const TempDir t;
  const auto want = expected_mask();
  struct Case {
    const char* dir;
    gd::Layout layout;
    std::vector<std::pair<const char*, const char*>> files;  // relative path, fixture
    bool has_fov;
  };
  const std::vector<Case> cases = {
      {"drive", gd::Layout::drive,
       {{"training/images/21_training.tif", "pattern_rgb.tif"},
        {"training/1st_manual/21_manual1.gif", "pattern_gray.gif"},
        {"training/mask/21_training_mask.gif", "pattern_gray.gif"},
        {"test/images/01_test.tif", "pattern_rgb.tif"},
        {"test/1st_manual/01_manual1.gif", "pattern_gray.gif"},
        {"test/mask/01_test_mask.gif", "pattern_gray.gif"}},
       true},
      {"stare", gd::Layout::stare,
       {{"stare-images/im0001.ppm.gz", "pattern_rgb.ppm.gz"}, {"labels-ah/im0001.ah.ppm.gz", "pattern_rgb.ppm.gz"}},
       false},
      {"hrf", gd::Layout::hrf,
       {{"images/01_dr.JPG", "pattern_rgb.jpg"},
        {"manual1/01_dr.tif", "pattern_gray.tif"},
        {"mask/01_dr_mask.tif", "pattern_gray.tif"}},
       true},
      {"chase_flat", gd::Layout::chase_db1_flat,
       {{"Image_01L.jpg", "pattern_rgb.jpg"}, {"Image_01L_1stHO.png", "pattern_gray.png"}}, false},
      {"chase_split", gd::Layout::chase_db1,
       {{"training/images/Image_01L.jpg", "pattern_rgb.jpg"},
        {"training/1st_manual/Image_01L_1stHO.png", "pattern_gray.png"},
        {"training/mask/Image_01L.png", "pattern_gray.pgm"},
        {"test/images/Image_08L.jpg", "pattern_rgb.jpg"},
        {"test/1st_manual/Image_08L_1stHO.png", "pattern_gray.png"},
        {"test/mask/Image_08L.png", "pattern_gray.png"}},
       true},
      {"generic", gd::Layout::generic,
       {{"images/a.bmp", "pattern_rgb.bmp"}, {"masks/a.png", "pattern_gray.png"}, {"fov/a.pgm", "pattern_gray.pgm"}},
       true},
  };
  const gd::Image rgb = gd::read_image(fixture("pattern_rgb.png"));
  for (const auto& c : cases) {
    INFO(c.dir);
    for (const auto& [rel, fix] : c.files) t.put(fs::path(c.dir) / rel, fixture(fix));
    const auto report = gd::detect_layout(t.path / c.dir);
    INFO(report.summary());
    CHECK(report.layout == c.layout);
    CHECK(report.ok());
    const auto ds = gd::open_dataset(t.path / c.dir);
    REQUIRE(ds.size() == 1);
    const auto s = ds.get(0);
    CHECK(s.image.shape() == gkd::Shape{3, 6, 8});
    if (c.layout != gd::Layout::stare) CHECK(s.mask.to_vector() == want);
    if (c.has_fov) CHECK(s.fov.to_vector() == want);
    if (std::string(c.dir) != "hrf" && std::string(c.dir) != "chase_flat" && std::string(c.dir) != "chase_split")
      CHECK(s.image.to_vector() == gd::to_tensor<float>(rgb).to_vector());  // lossless formats
  }
  // a mask stored with values 0/1 (not 0/255) is binarised as nonzero
  gd::Image m01 = gd::Image::zeros(8, 6, 1);
  m01.at(2, 3) = 1;
  t.write("generic01/images/x.png", rgb);
  t.write("generic01/masks/x.png", m01);
  const auto s = gd::open_dataset(t.path / "generic01").get(0);
  CHECK(s.mask.at({2, 3}) == 1.f);
  CHECK(s.mask.to_vector()[0] == 0.f);
  CHECK(s.fov.shape() == gkd::Shape{6, 8});
}

TEST_CASE("Incomplete, mismatched and corrupt sets give errors naming the file", "[data]") {
  const TempDir t;
  const gd::Image rgb = gd::read_image(fixture("pattern_rgb.png"));
  // image without mask
  t.write("nomask/images/a.png", rgb);
  t.write("nomask/masks/a.png", gd::Image::zeros(8, 6, 1));
  t.write("nomask/images/b.png", rgb);
  const auto report = gd::detect_layout(t.path / "nomask");
  CHECK_FALSE(report.ok());
  CHECK(report.summary().find("b.png has no mask") != std::string::npos);
  std::string e = error_of([&] { (void)gd::open_dataset(t.path / "nomask"); });
  CHECK(e.find((t.path / "nomask/images/b.png").string()) != std::string::npos);
  // mask of another size
  t.write("size/images/a.png", rgb);
  t.write("size/masks/a.png", gd::Image::zeros(7, 6, 1));
  e = error_of([&] { (void)gd::open_dataset(t.path / "size").get(0); });
  CHECK(e.find((t.path / "size/masks/a.png").string()) != std::string::npos);
  CHECK(e.find("7x6") != std::string::npos);
  // 0-byte image and an unreadable header
  t.write("broken/masks/a.png", gd::Image::zeros(8, 6, 1));
  t.write("broken/masks/b.png", gd::Image::zeros(8, 6, 1));
  fs::create_directories(t.path / "broken/images");
  gd::write_file_bytes(t.path / "broken/images/a.png", {});
  const std::vector<std::uint8_t> bad{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'X', 'X', 'X', 'X'};
  gd::write_file_bytes(t.path / "broken/images/b.png", bad);
  const auto broken = gd::open_dataset(t.path / "broken");
  REQUIRE(broken.size() == 2);
  e = error_of([&] { (void)broken.get(0); });
  CHECK(e.find((t.path / "broken/images/a.png").string()) != std::string::npos);
  CHECK(e.find("0-byte") != std::string::npos);
  e = error_of([&] { (void)broken.get(1); });
  CHECK(e.find((t.path / "broken/images/b.png").string()) != std::string::npos);
  // no known layout / no folder
  fs::create_directories(t.path / "empty");
  CHECK(gd::detect_layout(t.path / "empty").layout == gd::Layout::unknown);
  e = error_of([&] { (void)gd::open_dataset(t.path / "empty"); });
  CHECK(e.find("looked for") != std::string::npos);
  e = error_of([&] { (void)gd::open_dataset(t.path / "nowhere"); });
  CHECK(e.find("no such folder") != std::string::npos);
}

TEST_CASE("compute_fov: a bright disc on black, with a dark hole and speckle, becomes one filled disc", "[data]") {
  auto img = Tensor<float>::zeros({3, 60, 70});
  for (std::int64_t y = 0; y < 60; ++y)
    for (std::int64_t x = 0; x < 70; ++x) {
      const double r2 = (y - 30.0) * (y - 30.0) + (x - 35.0) * (x - 35.0);
      if (r2 < 25.0 * 25.0) img.at({0, y, x}) = (r2 < 16.0) ? 0.f : 0.7f;  // a dark hole in the middle
    }
  img.at({0, 2, 2}) = 0.9f;  // isolated speckle outside
  const auto fov = gd::compute_fov(img);
  CHECK(fov.at({30, 35}) == 1.f);  // hole filled
  CHECK(fov.at({2, 2}) == 0.f);    // speckle removed (not the largest component)
  CHECK(fov.at({30, 5}) == 0.f);
  double area = 0;
  for (float v : fov.to_vector()) area += v;
  CHECK(area == Approx(3.14159 * 25 * 25).epsilon(0.05));
}
