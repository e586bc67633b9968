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
#include <string>

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

}  // namespace gkd::data
