// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Readers for the published layouts of the liver CT sets: CHAOS (CT part, DICOM slices + PNG ground
/// truth) and LiTS (NIfTI volumes + label volumes), with layout detection and slicing into 2-D samples.
///
/// Layouts recognised under `root` (searched up to six folders deep, so the unpacked archives work as is):
/// - CHAOS: `.../CT/<patient>/DICOM_anon/*.dcm` with `.../CT/<patient>/Ground/liver_GT_NNN.png`; the i-th
///   ground-truth PNG (name order) labels the i-th DICOM file (name order), as the challenge defines.
/// - LiTS: `volume-<n>.nii[.gz]` with `segmentation-<n>.nii[.gz]` anywhere below root (labels 0
///   background, 1 liver, 2 tumour; the liver mask is label >= 1, i.e. includes the tumour).
///
/// `VolumeSample::image` is D×H×W in HU, `mask` D×H×W with 0/1. `to_slices` turns a volume into 2-D
/// `Sample`s (image [1, H, W] HU-windowed to [-1, 1], liver [-60, 140] by default; fov all ones).
/// Errors name the file: a volume without labels, label and image shapes that differ, a ground-truth count
/// that differs from the slice count.
///
/// Needs both implementations in one TU: GKD_IMAGE_IO_IMPLEMENTATION and GKD_VOLUME_IO_IMPLEMENTATION.
///
/// @code
/// auto lits = gkd::data::open_volume_dataset("/data/LiTS");        // detects the layout
/// auto v = lits.get(0);                                             // v.image [D, 512, 512] HU, v.mask
/// auto slices = gkd::data::to_slices(v, {.only_foreground = true}); // 2-D samples with liver
/// @endcode
#include <algorithm>
#include <functional>
#include <map>
#include <filesystem>
#include <string>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/data/datasets.hpp"
#include "gkd/data/image_io.hpp"
#include "gkd/data/preprocess.hpp"
#include "gkd/data/volume_io.hpp"

namespace gkd::data {

enum class VolumeLayout { unknown, chaos_ct, lits };

inline const char* volume_layout_name(VolumeLayout l) {
  return l == VolumeLayout::chaos_ct ? "CHAOS CT" : l == VolumeLayout::lits ? "LiTS" : "unknown";
}

struct VolumeSample {
  Tensor<float> image;                      ///< D×H×W, HU
  Tensor<float> mask;                       ///< D×H×W, 0/1 liver
  std::array<double, 3> spacing{1, 1, 1};   ///< (slice, row, column) mm
  std::string name;                         ///< patient folder (CHAOS) or volume number (LiTS)
};

/// Where one volume's files are: `image` is a DICOM folder (CHAOS) or a NIfTI file (LiTS); `labels`
/// the ground-truth folder (CHAOS) or the segmentation NIfTI (LiTS).
struct VolumeFiles {
  std::string name;
  fs::path image, labels;
};

struct VolumeReport {
  VolumeLayout layout = VolumeLayout::unknown;
  std::size_t volumes = 0;
  std::vector<std::string> missing;
  [[nodiscard]] bool ok() const { return layout != VolumeLayout::unknown && missing.empty() && volumes > 0; }
  [[nodiscard]] std::string summary() const {
    std::string s = volume_layout_name(layout);
    if (layout == VolumeLayout::unknown)
      s += ": looked for CHAOS CT/<patient>/DICOM_anon + Ground, or LiTS volume-N.nii[.gz] + segmentation-N.nii[.gz]";
    else
      s += ": " + std::to_string(volumes) + " volumes";
    for (const auto& m : missing) s += "; missing: " + m;
    return s;
  }
};

namespace detail {
inline void walk(const fs::path& dir, int depth, const std::function<void(const fs::path&)>& visit) {
  std::error_code ec;
  if (depth < 0 || !fs::is_directory(dir, ec)) return;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  for (const auto& p : entries) {
    visit(p);
    if (fs::is_directory(p, ec)) walk(p, depth - 1, visit);
  }
}

inline std::vector<VolumeFiles> list_volumes(const fs::path& root, VolumeLayout& layout, std::vector<std::string>& missing) {
  std::vector<VolumeFiles> chaos, lits;
  std::map<std::string, fs::path> volumes, segmentations;

  walk(root, 5, [&](const fs::path& p) {
    const std::string n = p.filename().string();
    std::string id;
    if (digits_between(n, "volume-", ".nii", &id) || digits_between(n, "volume-", ".nii.gz", &id)) volumes[id] = p;
    if (digits_between(n, "segmentation-", ".nii", &id) || digits_between(n, "segmentation-", ".nii.gz", &id))
      segmentations[id] = p;
    if (n == "DICOM_anon" && has_dir(p)) chaos.push_back({p.parent_path().filename().string(), p, p.parent_path() / "Ground"});
  });
  if (!chaos.empty()) {
    layout = VolumeLayout::chaos_ct;
    std::vector<VolumeFiles> ok;
    for (auto& c : chaos) {
      if (has_dir(c.labels)) ok.push_back(c);
      else missing.push_back(c.image.string() + " has no Ground folder");
    }
    return ok;
  }
  if (!volumes.empty()) {
    layout = VolumeLayout::lits;
    for (const auto& [id, p] : volumes) {
      const auto s = segmentations.find(id);
      if (s == segmentations.end()) missing.push_back(p.string() + " has no segmentation-" + id + ".nii[.gz]");
      else lits.push_back({id, p, s->second});
    }
    std::sort(lits.begin(), lits.end(), [](const auto& a, const auto& b) { return std::stoll(a.name) < std::stoll(b.name); });
    return lits;
  }
  layout = VolumeLayout::unknown;
  return {};
}
}  // namespace detail

/// Reports the CT layout under `root`, the number of complete volumes and what is missing.
inline VolumeReport detect_volume_layout(const fs::path& root) {
  VolumeReport r;
  r.volumes = detail::list_volumes(root, r.layout, r.missing).size();
  return r;
}

class VolumeDataset {
 public:
  VolumeDataset(VolumeLayout layout, std::vector<VolumeFiles> files) : layout_(layout), files_(std::move(files)) {}
  [[nodiscard]] VolumeLayout layout() const noexcept { return layout_; }
  [[nodiscard]] std::size_t size() const noexcept { return files_.size(); }
  [[nodiscard]] const std::vector<VolumeFiles>& files() const noexcept { return files_; }

  /// Decodes volume `i` with its liver mask.
  [[nodiscard]] VolumeSample get(std::size_t i) const {
    GKD_CHECK(i < files_.size(), "volume_dataset", "index " << i << " out of range for " << files_.size() << " volumes");
    const VolumeFiles& f = files_[i];
    VolumeSample s;
    s.name = f.name;
    if (layout_ == VolumeLayout::lits) {
      const Volume img = read_nifti(f.image), seg = read_nifti(f.labels);
      GKD_CHECK(img.data.shape() == seg.data.shape(), "volume_dataset",
                f.labels.string() << ": labels " << to_string(seg.data.shape()) << " but volume " << f.image.string()
                                  << " is " << to_string(img.data.shape()));
      s.image = img.data;
      s.spacing = img.spacing;
      s.mask = Tensor<float>::empty(seg.data.shape());
      for (std::int64_t k = 0; k < seg.data.numel(); ++k) s.mask.data()[k] = seg.data.data()[k] >= 0.5f ? 1.f : 0.f;
      return s;
    }
    const Volume img = read_dicom_series(f.image, SliceOrder::file_name);
    const auto gt = detail::image_files(f.labels);
    GKD_CHECK(std::int64_t(gt.size()) == img.data.size(0), "volume_dataset",
              f.labels.string() << ": " << gt.size() << " ground-truth images for " << img.data.size(0) << " DICOM slices in "
                                << f.image.string());
    const std::int64_t d = img.data.size(0), h = img.data.size(1), w = img.data.size(2);
    s.image = img.data;
    s.spacing = img.spacing;
    s.mask = Tensor<float>::empty({d, h, w});
    for (std::int64_t k = 0; k < d; ++k) {
      const Tensor<float> m = detail::binary_mask(read_image(gt[k]), gt[k]);
      GKD_CHECK(m.size(0) == h && m.size(1) == w, "volume_dataset",
                gt[k].string() << ": ground truth is " << m.size(1) << "x" << m.size(0) << " but slice "
                               << img.files[k].string() << " is " << w << "x" << h);
      std::copy_n(m.data(), h * w, s.mask.data() + k * h * w);
    }
    return s;
  }

 private:
  VolumeLayout layout_;
  std::vector<VolumeFiles> files_;
};

/// Opens the CT set under `root`; throws when no layout matches or a volume lacks its labels.
inline VolumeDataset open_volume_dataset(const fs::path& root) {
  GKD_CHECK(detail::has_dir(root), "open_volume_dataset", root.string() << ": no such folder");
  VolumeLayout layout;
  std::vector<std::string> missing;
  auto files = detail::list_volumes(root, layout, missing);
  GKD_CHECK(layout != VolumeLayout::unknown, "open_volume_dataset", root.string() << ": " << detect_volume_layout(root).summary());
  GKD_CHECK(missing.empty(), "open_volume_dataset", volume_layout_name(layout) << " at " << root.string() << ": " << missing.front());
  GKD_CHECK(!files.empty(), "open_volume_dataset", root.string() << ": no volumes");
  return VolumeDataset(layout, std::move(files));
}

struct SliceOptions {
  double window_lo = -60.0, window_hi = 140.0;  ///< HU window mapped to [-1, 1]
  bool only_foreground = false;                 ///< keep only slices with some liver
  std::string domain = "ct";                    ///< `Sample::domain` of the slices (e.g. "chaos", "lits")
};

/// The axial slices of a volume as 2-D samples (`name` = "<volume>/<slice index>").
inline std::vector<Sample> to_slices(const VolumeSample& v, const SliceOptions& o = {}) {
  GKD_CHECK(v.image.dim() == 3 && v.image.shape() == v.mask.shape(), "to_slices",
            "image " << to_string(v.image.shape()) << " and mask " << to_string(v.mask.shape()) << " must be D×H×W of one shape");
  std::vector<Sample> out;
  const std::int64_t d = v.image.size(0), h = v.image.size(1), w = v.image.size(2);
  for (std::int64_t k = 0; k < d; ++k) {
    Tensor<float> m = v.mask.select(0, k).contiguous();
    if (o.only_foreground && std::none_of(m.data(), m.data() + h * w, [](float x) { return x != 0.f; })) continue;
    out.push_back({hu_window(v.image.select(0, k).unsqueeze(0).contiguous(), o.window_lo, o.window_hi), m,
                   Tensor<float>::ones({h, w}), v.name + "/" + std::to_string(k), o.domain});
  }
  return out;
}

}  // namespace gkd::data
