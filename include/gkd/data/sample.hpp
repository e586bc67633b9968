// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::data::Sample` (one image with its labels) and `gkd::data::Dataset` (samples by index), the
/// currency of the generators, readers, augmentation and the batch loader.
///
/// Contract of a Sample:
/// - `image`: C×H×W float, values nominally in [0, 1] (RGB fundus: C = 3; CT windowed: C = 1).
/// - `mask`: H×W float with values exactly 0 or 1 (the foreground: vessels, liver); undefined when unlabeled.
/// - `fov`: H×W float with values exactly 0 or 1 (the field of view / body); undefined when absent.
/// - `name`: a file-name-safe identifier; `domain`: the acquisition domain ("retina_a", "ct_venous", ...).
///
/// Contract of a Dataset: `get(i)` for 0 <= i < size() is deterministic (the same sample every call) and
/// safe to call concurrently from several threads (the batch loader does).
///
/// @code
/// gkd::data::Sample s = dataset.get(0);
/// auto h = s.image.size(1), w = s.image.size(2);   // s.mask is [h, w]
/// @endcode
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::data {

/// One image with its segmentation mask, field-of-view mask, name and domain.
struct Sample {
  Tensor<float> image;  ///< C×H×W
  Tensor<float> mask;   ///< H×W, 0/1 (undefined when the sample is unlabeled)
  Tensor<float> fov;    ///< H×W, 0/1 (undefined when absent)
  std::string name;
  std::string domain;

  [[nodiscard]] std::int64_t channels() const { return image.size(0); }
  [[nodiscard]] std::int64_t height() const { return image.size(1); }
  [[nodiscard]] std::int64_t width() const { return image.size(2); }
};

/// Throws gkd::Error (for operation `op`) unless `s` keeps the Sample contract's shapes.
inline void check_sample(const Sample& s, const char* op) {
  GKD_CHECK(s.image.defined() && s.image.dim() == 3, op,
            "sample '" << s.name << "' image must be C×H×W, got " << (s.image.defined() ? to_string(s.image.shape()) : "undefined"));
  const Shape hw{s.image.size(1), s.image.size(2)};
  GKD_CHECK(!s.mask.defined() || s.mask.shape() == hw, op,
            "sample '" << s.name << "' mask " << to_string(s.mask.shape()) << " does not match image " << to_string(s.image.shape()));
  GKD_CHECK(!s.fov.defined() || s.fov.shape() == hw, op,
            "sample '" << s.name << "' fov " << to_string(s.fov.shape()) << " does not match image " << to_string(s.image.shape()));
}

/// A finite, indexable collection of samples. `get` must be deterministic and thread-safe.
class Dataset {
 public:
  virtual ~Dataset() = default;
  [[nodiscard]] virtual std::int64_t size() const = 0;
  [[nodiscard]] virtual Sample get(std::int64_t index) const = 0;
};

/// A generated data set: sample i of domain d under seed s is `render(i, sample_seed(s, d, i))`, so it
/// depends on (seed, domain, index) only — not on the order or thread in which samples are requested.
/// `render` must be thread-safe (the generators are pure functions of their arguments).
class SyntheticDataset : public Dataset {
 public:
  using Render = std::function<Sample(std::int64_t index, std::uint64_t sample_seed)>;
  SyntheticDataset(std::string domain, std::int64_t count, std::uint64_t seed, Render render)
      : domain_(std::move(domain)), count_(count), seed_(seed), render_(std::move(render)) {
    GKD_CHECK(count >= 0, "SyntheticDataset", "count must be non-negative, got " << count);
    GKD_CHECK(bool(render_), "SyntheticDataset", "no render function for domain '" << domain_ << "'");
  }
  [[nodiscard]] std::int64_t size() const override { return count_; }
  [[nodiscard]] Sample get(std::int64_t index) const override {
    GKD_CHECK(index >= 0 && index < count_, "SyntheticDataset",
              "index " << index << " is out of range for " << count_ << " samples of domain '" << domain_ << "'");
    return render_(index, sample_seed(seed_, domain_, index));
  }
  [[nodiscard]] const std::string& domain() const noexcept { return domain_; }
  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }

  /// The per-sample seed: a splitmix64 mix of the data-set seed, a hash of the domain name and the index.
  static std::uint64_t sample_seed(std::uint64_t seed, const std::string& domain, std::int64_t index) {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a of the domain name
    for (unsigned char c : domain) h = (h ^ c) * 1099511628211ull;
    std::uint64_t z = seed ^ (h * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t(index) * 0xD1B54A32D192ED03ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  std::string domain_;
  std::int64_t count_;
  std::uint64_t seed_;
  Render render_;
};

}  // namespace gkd::data
