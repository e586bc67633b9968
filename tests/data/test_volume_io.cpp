// SPDX-License-Identifier: Apache-2.0
// CT volumes: a committed int16 NIfTI with slope/intercept, NIfTI float round trips (.nii, .nii.gz), a
// committed three-slice DICOM series (Hounsfield rescale, sorting by position, spacing), and errors that
// name the file for missing, empty, truncated and mismatched inputs.
#define GKD_VOLUME_IO_IMPLEMENTATION
#include <gkd/data/volume_io.hpp>

#include <catch2/catch.hpp>
#include "support/scratch.hpp"
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;
namespace gd = gkd::data;
using gkd::Tensor;

namespace {
const fs::path kCt = fs::path(GKD_SOURCE_DIR) / "tests/fixtures/images/ct";
struct TempDir : gkd::test::ScratchDir {
  TempDir() : ScratchDir("test_volume_io") {}
};
using gkd::test::error_of;
void write_bytes(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }
}  // namespace

#if defined(GKD_HAS_NIFTI)
TEST_CASE("NIfTI: int16 with scl_slope/scl_inter gives rescaled values in D×H×W order", "[data]") {
  const auto v = gd::read_nifti(kCt / "scaled_int16.nii.gz");
  REQUIRE(v.data.shape() == gkd::Shape{2, 3, 4});
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 4; ++i) CHECK(v.data.at({k, j, i}) == float(2 * (100 * k + 10 * j + i) - 1000));
  CHECK(v.spacing[0] == Approx(3.0));
  CHECK(v.spacing[1] == Approx(0.6));
  CHECK(v.spacing[2] == Approx(0.5));
}

TEST_CASE("NIfTI: float volumes round-trip through .nii and .nii.gz", "[data]") {
  const TempDir t;
  gkd::Generator gen(4);
  gd::Volume v;
  v.data = gkd::randn<float>({3, 5, 7}, gen, 0.f, 300.f);
  v.spacing = {2.5, 0.75, 0.8};
  for (const char* name : {"v.nii", "v.nii.gz"}) {
    INFO(name);
    gd::write_nifti(t.path / name, v);
    const auto back = gd::read_nifti(t.path / name);
    REQUIRE(back.data.shape() == v.data.shape());
    CHECK(back.data.to_vector() == v.data.to_vector());
    CHECK(back.spacing[0] == Approx(2.5));
    CHECK(back.spacing[2] == Approx(0.8));
  }
}

TEST_CASE("NIfTI: missing, empty, truncated and garbage files name the file", "[data]") {
  const TempDir t;
  std::string e = error_of([&] { (void)gd::read_nifti(t.path / "missing.nii"); });
  CHECK(e.find("missing.nii") != std::string::npos);
  write_bytes(t.path / "empty.nii", "");
  e = error_of([&] { (void)gd::read_nifti(t.path / "empty.nii"); });
  CHECK(e.find((t.path / "empty.nii").string()) != std::string::npos);
  CHECK(e.find("0-byte") != std::string::npos);
  write_bytes(t.path / "junk.nii", std::string(400, 'x'));
  e = error_of([&] { (void)gd::read_nifti(t.path / "junk.nii"); });
  CHECK(e.find((t.path / "junk.nii").string()) != std::string::npos);
  gd::Volume v;
  v.data = Tensor<float>::ones({4, 8, 8});
  gd::write_nifti(t.path / "full.nii", v);
  std::ifstream in(t.path / "full.nii", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(t.path / "trunc.nii", bytes.substr(0, bytes.size() / 2));
  e = error_of([&] { (void)gd::read_nifti(t.path / "trunc.nii"); });
  CHECK(e.find((t.path / "trunc.nii").string()) != std::string::npos);
}
#else
TEST_CASE("NIfTI without niftilib throws naming the package", "[data]") {
  CHECK_THROWS_WITH(gd::read_nifti(kCt / "scaled_int16.nii.gz"), Catch::Contains("libnifti2-dev"));
}
#endif

#if defined(GKD_HAS_GDCM)
TEST_CASE("DICOM series: Hounsfield rescale, slices sorted by position, spacing", "[data]") {
  const auto v = gd::read_dicom_series(kCt / "series");
  REQUIRE(v.data.shape() == gkd::Shape{3, 6, 5});
  for (int k = 0; k < 3; ++k)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 5; ++x) CHECK(v.data.at({k, y, x}) == float(1000 + 100 * k + 10 * y + x - 1024));
  CHECK(v.files.front().filename() == "c.dcm");  // z = 10 first, although named last
  CHECK(v.spacing[0] == Approx(2.5));
  CHECK(v.spacing[1] == Approx(0.7));
  CHECK(v.spacing[2] == Approx(0.8));
  const auto one = gd::read_dicom(kCt / "series/a.dcm");
  CHECK(one.data.shape() == gkd::Shape{1, 6, 5});
  CHECK(one.data.at({0, 0, 0}) == float(1200 - 1024));
}

TEST_CASE("DICOM: empty, truncated, garbage and mismatched slices name the file", "[data]") {
  const TempDir t;
  write_bytes(t.path / "empty.dcm", "");
  std::string e = error_of([&] { (void)gd::read_dicom(t.path / "empty.dcm"); });
  CHECK(e.find((t.path / "empty.dcm").string()) != std::string::npos);
  write_bytes(t.path / "junk.dcm", std::string(300, 'q'));
  e = error_of([&] { (void)gd::read_dicom(t.path / "junk.dcm"); });
  CHECK(e.find((t.path / "junk.dcm").string()) != std::string::npos);
  std::ifstream in(kCt / "series/a.dcm", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(t.path / "trunc.dcm", bytes.substr(0, bytes.size() - 30));
  e = error_of([&] { (void)gd::read_dicom(t.path / "trunc.dcm"); });
  CHECK(e.find((t.path / "trunc.dcm").string()) != std::string::npos);
  // a series where one slice is another file's truncated copy
  fs::create_directories(t.path / "series");
  fs::copy_file(kCt / "series/a.dcm", t.path / "series/a.dcm");
  fs::copy_file(t.path / "trunc.dcm", t.path / "series/b.dcm");
  e = error_of([&] { (void)gd::read_dicom_series(t.path / "series"); });
  CHECK(e.find((t.path / "series/b.dcm").string()) != std::string::npos);
  e = error_of([&] { (void)gd::read_dicom_series(t.path / "nowhere"); });
  CHECK(e.find("no such folder") != std::string::npos);
}
#else
TEST_CASE("DICOM without GDCM throws naming the package", "[data]") {
  CHECK_THROWS_WITH(gd::read_dicom_series(kCt / "series"), Catch::Contains("libgdcm-dev"));
}
#endif
