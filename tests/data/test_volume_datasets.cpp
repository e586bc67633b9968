// SPDX-License-Identifier: Apache-2.0
// CT data sets: generated LiTS (NIfTI) and CHAOS (DICOM + PNG ground truth) layouts, detection, liver
// masks, 2-D slicing with HU windowing, and errors for missing or mismatched labels.
#define GKD_IMAGE_IO_IMPLEMENTATION
#define GKD_VOLUME_IO_IMPLEMENTATION
#include <gkd/data/image_io.hpp>
#include <gkd/data/volume_datasets.hpp>
#include <gkd/data/volume_io.hpp>

#include <catch2/catch.hpp>
#include "support/scratch.hpp"
#include <filesystem>
#include <unistd.h>

namespace fs = std::filesystem;
namespace gd = gkd::data;
using gkd::Tensor;

namespace {
const fs::path kCt = fs::path(GKD_SOURCE_DIR) / "tests/fixtures/images/ct";
struct TempDir : gkd::test::ScratchDir {
  TempDir() : ScratchDir("test_volume_datasets") {}
};
using gkd::test::error_of;
}  // namespace

#if defined(GKD_HAS_NIFTI)
TEST_CASE("LiTS layout: volumes with segmentations, liver = label >= 1, slices windowed", "[data]") {
  const TempDir t;
  fs::create_directories(t.path / "lits/Training Batch 1");
  gd::Volume ct, seg;
  ct.data = Tensor<float>::empty({2, 4, 3});
  seg.data = Tensor<float>::zeros({2, 4, 3});
  for (std::int64_t i = 0; i < 24; ++i) ct.data.data()[i] = float(-200 + 20 * i);
  seg.data.at({1, 2, 1}) = 1.f;
  seg.data.at({1, 3, 1}) = 2.f;  // tumour counts as liver
  for (int n : {0, 10, 2}) {
    gd::write_nifti(t.path / "lits/Training Batch 1" / ("volume-" + std::to_string(n) + ".nii.gz"), ct);
    gd::write_nifti(t.path / "lits/Training Batch 1" / ("segmentation-" + std::to_string(n) + ".nii"), seg);
  }
  const auto report = gd::detect_volume_layout(t.path / "lits");
  INFO(report.summary());
  CHECK(report.layout == gd::VolumeLayout::lits);
  CHECK(report.ok());
  const auto ds = gd::open_volume_dataset(t.path / "lits");
  REQUIRE(ds.size() == 3);
  CHECK(ds.files()[2].name == "10");  // numeric order
  const auto v = ds.get(0);
  CHECK(v.image.to_vector() == ct.data.to_vector());
  CHECK(v.mask.at({1, 2, 1}) == 1.f);
  CHECK(v.mask.at({1, 3, 1}) == 1.f);
  CHECK(v.mask.at({0, 0, 0}) == 0.f);
  const auto slices = gd::to_slices(v, {.only_foreground = true});
  REQUIRE(slices.size() == 1);
  CHECK(slices[0].name == "0/1");
  CHECK(slices[0].image.shape() == gkd::Shape{1, 4, 3});
  CHECK(slices[0].image.at({0, 0, 0}) == Approx(2.0 * (40.0 + 60.0) / 200.0 - 1.0));  // HU 40 in [-60, 140]
  CHECK(gd::to_slices(v).size() == 2);
  // a segmentation of another shape, and a volume without segmentation
  gd::Volume small;
  small.data = Tensor<float>::zeros({2, 4, 2});
  gd::write_nifti(t.path / "lits/Training Batch 1/segmentation-2.nii", small);
  std::string e = error_of([&] { (void)ds.get(1); });
  CHECK(e.find("segmentation-2.nii") != std::string::npos);
  gd::write_nifti(t.path / "lits/volume-7.nii", ct);
  e = error_of([&] { (void)gd::open_volume_dataset(t.path / "lits"); });
  CHECK(e.find("volume-7.nii has no segmentation-7") != std::string::npos);
}
#endif

#if defined(GKD_HAS_GDCM)
TEST_CASE("CHAOS layout: DICOM slices paired with Ground PNGs in name order", "[data]") {
  const TempDir t;
  const fs::path patient = t.path / "CHAOS_Train_Sets/Train_Sets/CT/1";
  fs::create_directories(patient / "DICOM_anon");
  fs::create_directories(patient / "Ground");
  // CHAOS names slices i0000,0000.dcm ...; ours: a, b, c in name order (positions z = 15, 12.5, 10)
  for (const char* n : {"a.dcm", "b.dcm", "c.dcm"}) fs::copy_file(kCt / "series" / n, patient / "DICOM_anon" / n);
  for (int k = 0; k < 3; ++k) {
    gd::Image gt = gd::Image::zeros(5, 6, 1);
    gt.at(k, k) = 255;
    gd::write_png(patient / "Ground" / ("liver_GT_00" + std::to_string(k) + ".png"), gt);
  }
  const auto report = gd::detect_volume_layout(t.path);
  INFO(report.summary());
  CHECK(report.layout == gd::VolumeLayout::chaos_ct);
  CHECK(report.ok());
  const auto v = gd::open_volume_dataset(t.path).get(0);
  CHECK(v.name == "1");
  REQUIRE(v.image.shape() == gkd::Shape{3, 6, 5});
  CHECK(v.image.at({0, 0, 0}) == float(1200 - 1024));  // a.dcm first (name order), stored 1000 + 100·2
  for (int k = 0; k < 3; ++k) CHECK(v.mask.at({k, k, k}) == 1.f);
  double total = 0;
  for (float m : v.mask.to_vector()) total += m;
  CHECK(total == 3.0);
  // one ground-truth image too many
  gd::write_png(patient / "Ground/liver_GT_003.png", gd::Image::zeros(5, 6, 1));
  const std::string e = error_of([&] { (void)gd::open_volume_dataset(t.path).get(0); });
  CHECK(e.find("4 ground-truth images for 3 DICOM slices") != std::string::npos);
  CHECK(e.find((patient / "Ground").string()) != std::string::npos);
}
#endif

TEST_CASE("No CT layout: the report says what it looked for", "[data]") {
  const TempDir t;
  const auto r = gd::detect_volume_layout(t.path);
  CHECK(r.layout == gd::VolumeLayout::unknown);
  CHECK(r.summary().find("looked for") != std::string::npos);
  CHECK_THROWS_WITH(gd::open_volume_dataset(t.path), Catch::Contains("looked for"));
}
