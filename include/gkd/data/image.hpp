// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::data::Image`: an 8-bit raster (gray, gray+alpha, RGB or RGBA), and its conversions to and from
/// `gkd::Tensor` in channel-first layout.
///
/// Pixels are interleaved and row-major: sample (y, x, c) is `pixels[(y * width + x) * channels + c]`.
/// `to_tensor` maps 0..255 to [0, 1] (v / 255) and gives a C×H×W tensor; `from_tensor` accepts H×W or C×H×W
/// (C in 1..4) with values in [0, 1] (clamped, rounded to the nearest level).
///
/// @code
/// gkd::data::Image img = gkd::data::Image::zeros(4, 3, 3);   // 4 wide, 3 high, RGB
/// img.at(1, 2, 0) = 255;                                        // row 1, column 2, red
/// gkd::Tensor<float> t = gkd::data::to_tensor<float>(img);      // [3, 3, 4], t.at({0, 1, 2}) == 1
/// gkd::data::Image back = gkd::data::from_tensor(t);            // identical to img
/// @endcode
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::data {

/// An 8-bit image with 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) interleaved channels.
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;

  /// A black image of the given size.
  static Image zeros(int width, int height, int channels) {
    GKD_CHECK(width > 0 && height > 0 && channels >= 1 && channels <= 4, "Image",
              "size " << width << "x" << height << " with " << channels << " channels is not a valid image");
    return Image{width, height, channels,
                 std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * channels, 0)};
  }
  [[nodiscard]] bool empty() const noexcept { return pixels.empty(); }
  [[nodiscard]] std::size_t index(int y, int x, int c) const noexcept {
    return (static_cast<std::size_t>(y) * width + x) * channels + c;
  }
  [[nodiscard]] std::uint8_t at(int y, int x, int c = 0) const { return pixels[index(y, x, c)]; }
  [[nodiscard]] std::uint8_t& at(int y, int x, int c = 0) { return pixels[index(y, x, c)]; }
};

/// C×H×W tensor with values `pixel / divisor` (default: 0..255 → [0, 1], correctly rounded).
template <Real T = float>
Tensor<T> to_tensor(const Image& image, T divisor = T(255)) {
  GKD_CHECK(!image.empty() && image.pixels.size() == static_cast<std::size_t>(image.width) * image.height * image.channels,
            "to_tensor", "image " << image.width << "x" << image.height << "x" << image.channels << " holds "
                                  << image.pixels.size() << " bytes");
  const std::int64_t c = image.channels, h = image.height, w = image.width;
  Tensor<T> out = Tensor<T>::empty({c, h, w});
  T* o = out.data();
  for (std::int64_t k = 0; k < c; ++k)
    for (std::int64_t i = 0; i < h * w; ++i) o[k * h * w + i] = T(image.pixels[i * c + k]) / divisor;
  return out;
}

/// An 8-bit image from an H×W or C×H×W (C ≤ 4) tensor: `round(clamp(v, 0, 1) * 255)`.
template <Real T>
Image from_tensor(const Tensor<T>& t) {
  GKD_CHECK(t.dim() == 2 || (t.dim() == 3 && t.size(0) >= 1 && t.size(0) <= 4), "from_tensor",
            "expects an H×W or C×H×W tensor with 1 to 4 channels, got " << gkd::to_string(t.shape()));
  const Tensor<T> src = t.contiguous();
  const int c = t.dim() == 2 ? 1 : static_cast<int>(t.size(0));
  const int h = static_cast<int>(t.size(-2)), w = static_cast<int>(t.size(-1));
  Image img = Image::zeros(w, h, c);
  const T* s = src.data();
  const std::size_t plane = static_cast<std::size_t>(h) * w;
  for (int k = 0; k < c; ++k)
    for (std::size_t i = 0; i < plane; ++i) {
      const double v = std::isnan(double(s[k * plane + i])) ? 0.0 : std::clamp(double(s[k * plane + i]), 0.0, 1.0);
      img.pixels[i * c + k] = static_cast<std::uint8_t>(std::lround(v * 255.0));
    }
  return img;
}

/// The image reduced to one channel: gray stays, RGB(A) becomes `0.299 R + 0.587 G + 0.114 B` (rounded),
/// alpha is dropped.
inline Image to_gray(const Image& image) {
  if (image.channels <= 2 && image.channels >= 1) {
    Image g = Image::zeros(image.width, image.height, 1);
    for (std::size_t i = 0; i < g.pixels.size(); ++i) g.pixels[i] = image.pixels[i * image.channels];
    return g;
  }
  GKD_CHECK(image.channels >= 3, "to_gray", "image has " << image.channels << " channels");
  Image g = Image::zeros(image.width, image.height, 1);
  for (std::size_t i = 0; i < g.pixels.size(); ++i) {
    const std::uint8_t* p = &image.pixels[i * image.channels];
    g.pixels[i] = static_cast<std::uint8_t>(std::lround(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]));
  }
  return g;
}

}  // namespace gkd::data
