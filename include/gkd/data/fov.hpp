// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Field-of-view (FOV) mask of a fundus photograph computed from the image when a data set ships none
/// (STARE, CHASE_DB1's original release): the camera aperture is a bright disc on a black background.
///
/// Method: threshold the red channel (gray for 1-channel images) at
/// `max(min_level, relative · P99(red))`, close small gaps (dilate then erode with a (2r+1)² square),
/// fill holes (everything not reachable from the border through background), and keep the largest
/// 4-connected component. On CHASE_DB1 this agrees with the supplied masks at Dice > 0.98
/// (tests/data/test_datasets.cpp).
///
/// @code
/// gkd::Tensor<float> fov = gkd::data::compute_fov(rgb);   // rgb: [3, H, W] in [0, 1] → [H, W] of 0/1
/// @endcode
#include <algorithm>
#include <cstdint>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::data {

struct FovOptions {
  double relative = 0.12;     ///< threshold as a fraction of the 99th percentile of the red channel
  double min_level = 0.06;    ///< lowest threshold (in [0, 1] intensity)
  int close_radius = 2;       ///< closing radius in pixels
};

namespace detail {
inline std::vector<std::uint8_t> dilate_square(const std::vector<std::uint8_t>& m, std::int64_t h, std::int64_t w, int r,
                                               bool erode) {
  // separable: rows then columns (max for dilation, min for erosion); outside the image counts as background
  std::vector<std::uint8_t> tmp(m.size()), out(m.size());
  const std::uint8_t pad = 0;
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x) {
      std::uint8_t v = erode ? 1 : 0;
      for (std::int64_t d = -r; d <= r; ++d) {
        const std::int64_t xx = x + d;
        const std::uint8_t s = xx < 0 || xx >= w ? pad : m[y * w + xx];
        v = erode ? std::min(v, s) : std::max(v, s);
      }
      tmp[y * w + x] = v;
    }
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x) {
      std::uint8_t v = erode ? 1 : 0;
      for (std::int64_t d = -r; d <= r; ++d) {
        const std::int64_t yy = y + d;
        const std::uint8_t s = yy < 0 || yy >= h ? pad : tmp[yy * w + x];
        v = erode ? std::min(v, s) : std::max(v, s);
      }
      out[y * w + x] = v;
    }
  return out;
}

/// Labels 4-connected components of value `value`; returns labels (0 = other) and the component sizes.
inline std::vector<std::int32_t> components(const std::vector<std::uint8_t>& m, std::int64_t h, std::int64_t w,
                                            std::uint8_t value, std::vector<std::int64_t>& sizes) {
  std::vector<std::int32_t> label(m.size(), 0);
  std::vector<std::int64_t> stack;
  sizes.assign(1, 0);
  for (std::int64_t s = 0; s < h * w; ++s) {
    if (m[s] != value || label[s]) continue;
    const auto id = static_cast<std::int32_t>(sizes.size());
    sizes.push_back(0);
    stack.assign(1, s);
    label[s] = id;
    while (!stack.empty()) {
      const std::int64_t i = stack.back();
      stack.pop_back();
      ++sizes[id];
      const std::int64_t y = i / w, x = i % w;
      const std::int64_t nb[4] = {y > 0 ? i - w : -1, y + 1 < h ? i + w : -1, x > 0 ? i - 1 : -1, x + 1 < w ? i + 1 : -1};
      for (std::int64_t j : nb)
        if (j >= 0 && m[j] == value && !label[j]) label[j] = id, stack.push_back(j);
    }
  }
  return label;
}
}  // namespace detail

/// FOV mask (H×W, 0/1) of a C×H×W fundus image with values in [0, 1].
template <Real T>
Tensor<T> compute_fov(const Tensor<T>& image, const FovOptions& o = {}) {
  GKD_CHECK(image.dim() == 3 && image.size(1) > 0 && image.size(2) > 0, "compute_fov",
            "expects a C×H×W image, got " << to_string(image.shape()));
  const std::int64_t h = image.size(1), w = image.size(2);
  const Tensor<T> red = image.select(0, 0).contiguous();
  std::vector<T> sorted(red.data(), red.data() + h * w);
  const auto k = static_cast<std::ptrdiff_t>(0.99 * double(sorted.size() - 1));
  std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
  const double threshold = std::max(o.min_level, o.relative * double(sorted[static_cast<std::size_t>(k)]));
  std::vector<std::uint8_t> m(static_cast<std::size_t>(h * w));
  for (std::int64_t i = 0; i < h * w; ++i) m[i] = double(red.data()[i]) > threshold;
  if (o.close_radius > 0)
    m = detail::dilate_square(detail::dilate_square(m, h, w, o.close_radius, false), h, w, o.close_radius, true);
  // fill holes: background not connected to the border becomes foreground
  std::vector<std::int64_t> sizes;
  auto bg = detail::components(m, h, w, 0, sizes);
  std::vector<std::uint8_t> border(sizes.size(), 0);
  for (std::int64_t x = 0; x < w; ++x) border[bg[x]] = border[bg[(h - 1) * w + x]] = 1;
  for (std::int64_t y = 0; y < h; ++y) border[bg[y * w]] = border[bg[y * w + w - 1]] = 1;
  for (std::int64_t i = 0; i < h * w; ++i)
    if (!m[i] && !border[bg[i]]) m[i] = 1;
  // keep the largest component
  auto fg = detail::components(m, h, w, 1, sizes);
  const auto best = std::max_element(sizes.begin() + 1, sizes.end());
  Tensor<T> out = Tensor<T>::zeros({h, w});
  if (best == sizes.end()) return out;
  const auto id = static_cast<std::int32_t>(best - sizes.begin());
  for (std::int64_t i = 0; i < h * w; ++i) out.data()[i] = fg[i] == id ? T(1) : T(0);
  return out;
}

}  // namespace gkd::data
