// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Readers for the published folder layouts of the 2-D segmentation sets — CHASE_DB1, DRIVE, STARE,
/// HRF — and a generic `images/` + `masks/` (+ optional `fov/`) layout, with layout auto-detection.
/// (CT volumes: see volume_datasets.hpp.)
///
/// Layouts recognised under `root` (`split` picks `training`/`test` sub-folders where a set has them):
/// | set | image | vessel mask | FOV |
/// |---|---|---|---|
/// | CHASE_DB1 (split copy) | `<split>/images/Image_01L.jpg` | `<split>/1st_manual/Image_01L_1stHO.png` (`2nd_manual`, `_2ndHO`) | `<split>/mask/Image_01L.png` |
/// | CHASE_DB1 (original zip) | `Image_01L.jpg` | `Image_01L_1stHO.png` / `_2ndHO.png` | computed |
/// | DRIVE | `<split>/images/21_training.tif` | `<split>/1st_manual/21_manual1.gif` (`2nd_manual`, `manual2`) | `<split>/mask/21_training_mask.gif` |
/// | STARE | `stare-images/im0001.ppm[.gz]` | `labels-ah/im0001.ah.ppm[.gz]` (`labels-vk`, `.vk.`) | computed |
/// | HRF | `images/01_dr.JPG` | `manual1/01_dr.tif` | `mask/01_dr_mask.tif` |
/// | generic | `images/<name>.<ext>` | `masks/<name>.<any ext>` | `fov/<name>.<any ext>` or none |
/// (STARE files may also lie together in one folder.) Observer 2 selects the second annotation where one exists.
///
/// Samples: `image` C×H×W float in [0, 1] (as stored: RGB fundus keeps 3 channels), `mask` and `fov` H×W
/// with values 0/1 (masks are binarised: `> 0` for 0/1-valued files, `>= 128` for 0/255 ones; colour labels
/// are reduced to gray first), `name` the image stem. With `compute_missing_fov`, a set without FOV masks
/// gets `compute_fov(image)`; the generic layout without `fov/` gets an all-ones FOV (set the option to
/// compute one instead).
///
/// Errors (gkd::Error, naming the file): an image without a mask, a mask or FOV whose size differs from
/// its image, any decode failure; `open_dataset` on a folder that matches no layout lists what it looked
/// for. `detect_layout` never throws on a readable folder: its report says what was found or missing.
///
/// Decoding needs the image_io implementation (GKD_IMAGE_IO_IMPLEMENTATION in one TU).
///
/// @code
/// auto report = gkd::data::detect_layout("../shared/data/chasedb1");
/// std::cout << report.summary() << '\n';          // "CHASE_DB1 (training/test split): 14 training, 14 test"
/// auto train = gkd::data::open_dataset("../shared/data/chasedb1", {.split = "training"});
/// gkd::data::Sample s = train.get(0);              // s.image [3, 960, 999], s.mask, s.fov [960, 999]
/// @endcode
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/data/fov.hpp"
#include "gkd/data/image.hpp"
#include "gkd/data/image_io.hpp"
#include "gkd/data/sample.hpp"

namespace gkd::data {

namespace fs = std::filesystem;

/// Where the files of one sample are; `fov` empty when the set has none.
struct SampleFiles {
  std::string name;
  fs::path image, mask, fov;
};

enum class Layout { unknown, chase_db1, chase_db1_flat, drive, stare, hrf, generic };

/// The short domain id a layout's samples carry in `Sample::domain` ("chase_db1", "drive", ...).
inline const char* layout_domain(Layout l) {
  switch (l) {
    case Layout::chase_db1:
    case Layout::chase_db1_flat: return "chase_db1";
    case Layout::drive: return "drive";
    case Layout::stare: return "stare";
    case Layout::hrf: return "hrf";
    case Layout::generic: return "generic";
    default: return "unknown";
  }
}

inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::chase_db1: return "CHASE_DB1 (training/test split)";
    case Layout::chase_db1_flat: return "CHASE_DB1 (original flat folder)";
    case Layout::drive: return "DRIVE";
    case Layout::stare: return "STARE";
    case Layout::hrf: return "HRF";
    case Layout::generic: return "generic images/ + masks/";
    default: return "unknown";
  }
}

struct DatasetOptions {
  std::string split = "training";  ///< sub-folder for sets with splits ("training" or "test"); "" = none
  int observer = 1;                ///< 1 or 2: which manual annotation
  bool compute_missing_fov = true; ///< compute a FOV when the set has none (else all ones)
};

/// What `detect_layout` found.
struct LayoutReport {
  Layout layout = Layout::unknown;
  std::map<std::string, std::size_t> samples;  ///< split ("" when none) → number of complete samples
  std::vector<std::string> missing;            ///< problems: images without masks, missing folders
  std::string looked_for;                      ///< for `unknown`: the layouts tried

  [[nodiscard]] bool ok() const { return layout != Layout::unknown && missing.empty(); }
  [[nodiscard]] std::string summary() const {
    std::ostringstream s;
    s << layout_name(layout);
    if (layout == Layout::unknown) s << ": " << looked_for;
    const char* sep = ": ";
    for (const auto& [split, n] : samples) s << sep << n << (split.empty() ? " samples" : " " + split), sep = ", ";
    for (const auto& m : missing) s << "; missing: " << m;
    return s.str();
  }
};

namespace detail {

inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
inline bool is_image_file(const fs::path& p) {
  static const char* exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".pnm", ".tif", ".tiff", ".gz"};
  const std::string e = lower(p.extension().string());
  return fs::is_regular_file(p) && std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}
/// The file name without every image extension (`im0001.ah.ppm.gz` → `im0001.ah`).
inline std::string stem_of(const fs::path& p) {
  std::string n = p.filename().string();
  for (int k = 0; k < 2; ++k) {
    const auto dot = n.rfind('.');
    if (dot == std::string::npos) break;
    const std::string e = lower(n.substr(dot));
    if (e == ".gz" || e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".gif" || e == ".ppm" ||
        e == ".pgm" || e == ".pnm" || e == ".tif" || e == ".tiff")
      n = n.substr(0, dot);
    else
      break;
  }
  return n;
}
/// `prefix` + one or more digits + `suffix`, exactly (the digits are returned in `digits`).
inline bool digits_between(const std::string& s, const std::string& prefix, const std::string& suffix,
                           std::string* digits = nullptr) {
  if (s.size() <= prefix.size() + suffix.size() || s.compare(0, prefix.size(), prefix) != 0 ||
      s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string mid = s.substr(prefix.size(), s.size() - prefix.size() - suffix.size());
  if (!std::all_of(mid.begin(), mid.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) return false;
  if (digits) *digits = mid;
  return true;
}
/// CHASE_DB1 image stem: Image_<digits>L or Image_<digits>R.
inline bool is_chase_stem(const std::string& s) { return digits_between(s, "Image_", "L") || digits_between(s, "Image_", "R"); }
/// STARE image stem: im<4 digits>.
inline bool is_stare_stem(const std::string& s) { return s.size() == 6 && digits_between(s, "im", ""); }
/// DRIVE image stem: <digits>_training or <digits>_test.
inline bool is_drive_stem(const std::string& s) { return digits_between(s, "", "_training") || digits_between(s, "", "_test"); }

inline std::vector<fs::path> image_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (is_image_file(e.path())) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}
/// The file in `dir` whose stem is `stem` (any image extension), or empty.
inline fs::path find_stem(const fs::path& dir, const std::string& stem) {
  for (const auto& p : image_files(dir))
    if (stem_of(p) == stem) return p;
  return {};
}
inline bool has_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
inline fs::path first_existing(std::initializer_list<fs::path> candidates) {
  for (const auto& c : candidates)
    if (has_dir(c)) return c;
  return {};
}

/// Lists the samples of `layout` under `root` for one split; images without a mask go to `missing`.
inline std::vector<SampleFiles> list_samples(Layout layout, const fs::path& root, const std::string& split, int observer,
                                             std::vector<std::string>& missing) {
  std::vector<SampleFiles> out;
  const std::string obs = observer == 2 ? "2" : "1";
  auto add = [&](const std::string& name, const fs::path& image, const fs::path& mask, const fs::path& fov) {
    if (mask.empty()) missing.push_back(image.string() + " has no mask");
    else out.push_back({name, image, mask, fov});
  };
  const fs::path base = split.empty() ? root : root / split;
  switch (layout) {
    case Layout::chase_db1:
      for (const auto& img : image_files(base / "images")) {
        const std::string n = stem_of(img);
        add(n, img, find_stem(base / (obs == "2" ? "2nd_manual" : "1st_manual"), n + (obs == "2" ? "_2ndHO" : "_1stHO")),
            find_stem(base / "mask", n));
      }
      break;
    case Layout::chase_db1_flat: {
      for (const auto& img : image_files(root))
        if (is_chase_stem(stem_of(img))) {
          const std::string n = stem_of(img);
          add(n, img, find_stem(root, n + (obs == "2" ? "_2ndHO" : "_1stHO")), {});
        }
      break;
    }
    case Layout::drive: {
      for (const auto& img : image_files(base / "images")) {
        const std::string n = stem_of(img);              // 21_training, 01_test
        const std::string id = n.substr(0, n.find('_'));  // 21
        add(n, img, find_stem(base / (obs + std::string(obs == "2" ? "nd_manual" : "st_manual")), id + "_manual" + obs),
            find_stem(base / "mask", n + "_mask"));
      }
      break;
    }
    case Layout::stare: {
      const fs::path images = first_existing({root / "stare-images", root / "images", root});
      const fs::path labels = first_existing({root / (observer == 2 ? "labels-vk" : "labels-ah"), root / "labels", root});
      for (const auto& img : image_files(images))
        if (is_stare_stem(stem_of(img))) {
          const std::string n = stem_of(img);
          add(n, img, find_stem(labels, n + (observer == 2 ? ".vk" : ".ah")), {});
        }
      break;
    }
    case Layout::hrf:
      for (const auto& img : image_files(root / "images")) {
        const std::string n = stem_of(img);
        add(n, img, find_stem(root / "manual1", n), find_stem(root / "mask", n + "_mask"));
      }
      break;
    case Layout::generic:
      for (const auto& img : image_files(base / "images")) {
        const std::string n = stem_of(img);
        add(n, img, find_stem(base / "masks", n), find_stem(base / "fov", n));
      }
      break;
    default: break;
  }
  return out;
}

inline Layout guess_layout(const fs::path& root, const std::string& split) {
  const fs::path base = split.empty() ? root : root / split;
  auto any_named = [](const fs::path& dir, auto&& predicate) {
    for (const auto& p : image_files(dir))
      if (predicate(p)) return true;
    return false;
  };
  auto chase = [](const fs::path& p) { return is_chase_stem(stem_of(p)); };
  auto chase_jpg = [](const fs::path& p) { return is_chase_stem(stem_of(p)) && lower(p.extension().string()) == ".jpg"; };
  auto drive = [](const fs::path& p) { return is_drive_stem(stem_of(p)); };
  auto stare = [](const fs::path& p) {
    const std::string n = lower(p.filename().string());
    return is_stare_stem(stem_of(p)) && (n.ends_with(".ppm") || n.ends_with(".ppm.gz"));
  };
  for (const fs::path& b : {base, root / "training", root / "test", root}) {
    if (has_dir(b / "images") && has_dir(b / "1st_manual")) {
      if (any_named(b / "images", chase)) return Layout::chase_db1;
      if (any_named(b / "images", drive)) return Layout::drive;
    }
  }
  if (any_named(root, chase_jpg)) return Layout::chase_db1_flat;
  if (has_dir(root / "stare-images") || any_named(root, stare)) return Layout::stare;
  if (has_dir(root / "images") && has_dir(root / "manual1")) return Layout::hrf;
  for (const fs::path& b : {base, root / "training", root / "test", root})
    if (has_dir(b / "images") && has_dir(b / "masks")) return Layout::generic;
  return Layout::unknown;
}

inline Tensor<float> binary_mask(const Image& decoded, const fs::path& file) {
  GKD_CHECK(!decoded.empty(), "dataset", file.string() << ": empty mask");
  const Image g = to_gray(decoded);
  const std::uint8_t mx = *std::max_element(g.pixels.begin(), g.pixels.end());
  const std::uint8_t cut = mx > 1 ? 128 : 1;
  Tensor<float> m = Tensor<float>::empty({g.height, g.width});
  for (std::size_t i = 0; i < g.pixels.size(); ++i) m.data()[i] = g.pixels[i] >= cut ? 1.f : 0.f;
  return m;
}

}  // namespace detail

/// Looks at `root` and reports the layout, the number of complete samples per split and what is missing.
inline LayoutReport detect_layout(const fs::path& root, int observer = 1) {
  LayoutReport r;
  if (!detail::has_dir(root)) {
    r.looked_for = "folder " + root.string() + " does not exist";
    return r;
  }
  r.layout = detail::guess_layout(root, "");
  if (r.layout == Layout::unknown) {
    r.looked_for = "no known layout in " + root.string() +
                   " (looked for CHASE_DB1 images/+1st_manual/ or Image_01L.jpg, DRIVE images/+1st_manual/ with "
                   "NN_training.tif, STARE stare-images/ or im0001.ppm, HRF images/+manual1/, generic images/+masks/)";
    return r;
  }
  const bool splits = r.layout == Layout::chase_db1 || r.layout == Layout::drive ||
                      (r.layout == Layout::generic && !detail::has_dir(root / "images"));
  std::vector<std::string> split_names = splits ? std::vector<std::string>{"training", "test"} : std::vector<std::string>{""};
  for (const auto& s : split_names) {
    if (splits && !detail::has_dir(root / s)) {
      r.missing.push_back("split folder " + (root / s).string());
      continue;
    }
    r.samples[s] = detail::list_samples(r.layout, root, s, observer, r.missing).size();
  }
  return r;
}

/// A 2-D data set on disk: the file list is built at `open_dataset`, images are decoded on `get`.
class FolderDataset : public Dataset {
 public:
  FolderDataset(Layout layout, std::vector<SampleFiles> files, DatasetOptions options)
      : layout_(layout), files_(std::move(files)), options_(std::move(options)) {}
  [[nodiscard]] Layout layout() const noexcept { return layout_; }
  [[nodiscard]] std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }
  [[nodiscard]] const std::vector<SampleFiles>& files() const noexcept { return files_; }

  /// Decodes sample `i` (its `domain` is the layout's id); throws gkd::Error naming the file on any
  /// decode or size mismatch.
  [[nodiscard]] Sample get(std::int64_t i) const override {
    GKD_CHECK(i >= 0 && i < size(), "dataset", "index " << i << " out of range for " << files_.size() << " samples");
    Sample s = load_sample(files_[static_cast<std::size_t>(i)], options_.compute_missing_fov);
    s.domain = layout_domain(layout_);
    return s;
  }

  /// Decodes one sample from its files.
  static Sample load_sample(const SampleFiles& f, bool compute_missing_fov = true) {
    Sample s;
    s.name = f.name;
    s.image = to_tensor<float>(read_image(f.image));
    const std::int64_t h = s.image.size(1), w = s.image.size(2);
    s.mask = detail::binary_mask(read_image(f.mask), f.mask);
    GKD_CHECK(s.mask.size(0) == h && s.mask.size(1) == w, "dataset",
              f.mask.string() << ": mask is " << s.mask.size(1) << "x" << s.mask.size(0) << " but image "
                              << f.image.string() << " is " << w << "x" << h);
    if (!f.fov.empty()) {
      s.fov = detail::binary_mask(read_image(f.fov), f.fov);
      GKD_CHECK(s.fov.size(0) == h && s.fov.size(1) == w, "dataset",
                f.fov.string() << ": FOV mask is " << s.fov.size(1) << "x" << s.fov.size(0) << " but image "
                               << f.image.string() << " is " << w << "x" << h);
    } else {
      s.fov = compute_missing_fov ? compute_fov(s.image) : Tensor<float>::ones({h, w});
    }
    return s;
  }

 private:
  Layout layout_;
  std::vector<SampleFiles> files_;
  DatasetOptions options_;
};

/// Opens the data set under `root` (layout detected); throws when no layout matches, when the split is
/// empty, or when an image has no mask (naming it).
inline FolderDataset open_dataset(const fs::path& root, const DatasetOptions& options = {}) {
  GKD_CHECK(options.observer == 1 || options.observer == 2, "open_dataset", "observer must be 1 or 2");
  GKD_CHECK(detail::has_dir(root), "open_dataset", root.string() << ": no such folder");
  const Layout layout = detail::guess_layout(root, options.split);
  GKD_CHECK(layout != Layout::unknown, "open_dataset", detect_layout(root).summary());
  const bool splits = layout == Layout::chase_db1 || layout == Layout::drive ||
                      (layout == Layout::generic && !detail::has_dir(root / "images"));
  const std::string split = splits ? options.split : "";
  std::vector<std::string> missing;
  auto files = detail::list_samples(layout, root, split, options.observer, missing);
  GKD_CHECK(missing.empty(), "open_dataset", layout_name(layout) << " at " << root.string() << ": " << missing.front()
                                                                << (missing.size() > 1 ? " (and " + std::to_string(missing.size() - 1) + " more)" : ""));
  GKD_CHECK(!files.empty(), "open_dataset",
            layout_name(layout) << " at " << root.string() << (split.empty() ? "" : " split '" + split + "'")
                                << ": no images found");
  return FolderDataset(layout, std::move(files), options);
}

}  // namespace gkd::data
