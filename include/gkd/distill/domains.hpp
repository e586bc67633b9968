// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The data of a pipeline run: a *domain* is either a synthetic generator (`retina_a`, `retina_b`,
/// `retina_c`, `ct_venous`, `ct_plain`) or a folder (CHASE_DB1, DRIVE, STARE, HRF, generic 2-D layouts;
/// CHAOS/LiTS-style CT volumes, as axial slices containing liver). Every sample is prepared once
/// into what the networks take: one channel (fundus: green channel, then CLAHE when `data.clahe`),
/// values in [0, 1], resized (image bilinear, mask and FOV nearest) so that its short side is
/// `data.image_size` — unless it is already that size.
///
/// Synthetic data do not depend on the run's seed (train images from seed 1000 + domain, test images from
/// seed 2000 + domain), so runs with different seeds train and test on the same images. Folders with a
/// training/test split use it; folders without one (STARE, volumes) use their first 80% of samples for
/// training and the rest for testing.
///
/// Folder decoding is compiled once per program: one translation unit defines
/// `GKD_IMAGE_IO_IMPLEMENTATION` and `GKD_VOLUME_IO_IMPLEMENTATION` before including this header.
/// @code
///   auto train = gkd::distill::load_domain(cfg, "retina_c", gkd::distill::Split::train);
///   auto test = gkd::distill::load_domain(cfg, "../shared/data/chasedb1", gkd::distill::Split::test);
/// @endcode
#include <filesystem>
#include <memory>
#include <string>

#include "gkd/data/datasets.hpp"
#include "gkd/data/loader.hpp"
#include "gkd/data/preprocess.hpp"
#include "gkd/data/synthetic_ct.hpp"
#include "gkd/data/synthetic_retina.hpp"
#include "gkd/distill/config.hpp"
#include "gkd/ops/elementwise.hpp"
#include "gkd/data/volume_datasets.hpp"

namespace gkd::distill {

enum class Split { train, test };

/// Whether `name` is one of the synthetic domains.
inline bool is_synthetic_domain(const std::string& name) {
  return name == "retina_a" || name == "retina_b" || name == "retina_c" || name == "ct_venous" || name == "ct_plain";
}

/// A short label for reports: the synthetic name, or the folder's last component.
inline std::string domain_label(const std::string& domain) {
  if (is_synthetic_domain(domain)) return domain;
  auto p = std::filesystem::path(domain);
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

/// One sample as the networks take it (see the file comment).
inline data::Sample prepare_sample(data::Sample s, const PipelineConfig& c) {
  if (s.image.size(0) == 3) {
    s.image = data::green_channel(s.image);
    if (c.data.clahe) s.image = data::clahe(s.image);
  }
  GKD_CHECK(s.image.size(0) == 1, "prepare_sample",
            s.name << ": expected a 1- or 3-channel image, got shape " << to_string(s.image.shape()));
  GKD_CHECK(s.mask.defined(), "prepare_sample", s.name << ": the sample has no mask (training and evaluation need labels)");
  const std::int64_t h = s.height(), w = s.width(), side = c.data.image_size;
  if (std::min(h, w) != side) {
    const double scale = static_cast<double>(side) / static_cast<double>(std::min(h, w));
    const auto oh = std::max<std::int64_t>(side, std::llround(h * scale)), ow = std::max<std::int64_t>(side, std::llround(w * scale));
    s.image = data::resize(s.image, oh, ow);
    s.mask = data::resize(s.mask, oh, ow, data::Interpolation::nearest);
    if (s.fov.defined()) s.fov = data::resize(s.fov, oh, ow, data::Interpolation::nearest);
  }
  return s;
}

namespace detail {

inline std::vector<data::Sample> split_samples(const data::Dataset& all, Split split) {
  const std::int64_t n = all.size(), n_train = std::max<std::int64_t>(1, n * 4 / 5);
  GKD_CHECK(n >= 2, "load_domain", "a folder without a train/test split needs at least 2 samples, found " << n);
  std::vector<data::Sample> out;
  for (std::int64_t i = split == Split::train ? 0 : n_train; i < (split == Split::train ? n_train : n); ++i) out.push_back(all.get(i));
  return out;
}

inline std::vector<data::Sample> raw_samples(const PipelineConfig& c, const std::string& domain, Split split) {
  const bool train = split == Split::train;
  const std::int64_t count = train ? c.data.train_count : c.data.test_count;
  const int size = static_cast<int>(c.data.image_size);
  auto all_of = [](const data::Dataset& d) {
    std::vector<data::Sample> v;
    for (std::int64_t i = 0; i < d.size(); ++i) v.push_back(d.get(i));
    return v;
  };
  const std::uint64_t salt = (train ? 1000 : 2000) + std::hash<std::string>{}(domain) % 997;
  if (domain == "retina_a" || domain == "retina_b" || domain == "retina_c") {
    const auto d = domain == "retina_a" ? data::RetinaDomain::A : domain == "retina_b" ? data::RetinaDomain::B : data::RetinaDomain::C;
    return all_of(data::retina_dataset(d, count, salt, {.size = size}));
  }
  if (domain == "ct_venous" || domain == "ct_plain")
    return all_of(data::ct_dataset(domain == "ct_venous" ? data::CtDomain::Venous : data::CtDomain::Plain, count, salt, {.size = size}));
  GKD_CHECK(std::filesystem::is_directory(domain), "load_domain",
            "'" << domain << "' is neither a synthetic domain (retina_a, retina_b, retina_c, ct_venous, ct_plain) nor a folder");
  const data::LayoutReport report = data::detect_layout(domain);
  if (report.layout != data::Layout::unknown) {
    if (report.samples.count("training") && report.samples.count("test")) return all_of(data::open_dataset(domain, {.split = train ? "training" : "test"}));
    return split_samples(data::open_dataset(domain, {.split = ""}), split);
  }
  const data::VolumeDataset volumes = data::open_volume_dataset(domain);
  std::vector<data::Sample> slices;
  const auto n = static_cast<std::int64_t>(volumes.size()), n_train = std::max<std::int64_t>(1, n * 4 / 5);
  for (std::int64_t i = train ? 0 : n_train; i < (train ? n_train : n); ++i)
    for (auto& s : data::to_slices(volumes.get(static_cast<std::size_t>(i)), {.only_foreground = true})) {
      s.image = mul(add(s.image, 1.0f), 0.5f);  // the HU window maps to [-1, 1]; the pipeline takes [0, 1]
      slices.push_back(std::move(s));
    }
  return slices;
}

}  // namespace detail

/// The prepared samples of a domain's split, in memory.
/// @throws gkd::Error for an unknown domain, an unreadable folder or samples without masks
inline std::shared_ptr<const data::Dataset> load_domain(const PipelineConfig& c, const std::string& domain, Split split) {
  std::vector<data::Sample> samples = detail::raw_samples(c, domain, split);
  GKD_CHECK(!samples.empty(), "load_domain", "'" << domain << "' has no " << (split == Split::train ? "training" : "test") << " samples");
  for (auto& s : samples) {
    s = prepare_sample(std::move(s), c);
    s.domain = domain_label(domain);
  }
  return std::make_shared<data::MemoryDataset>(std::move(samples));
}

}  // namespace gkd::distill
