// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::report::Canvas`: an RGB8 raster to draw report figures on (plots, overlays), stored as a
/// 3-channel `gkd::data::Image` so that the PNG writer of `gkd/data/image_io.hpp` takes it as it is.
///
/// Contract
/// - Coordinates are pixels, x to the right, y down, (0, 0) the top-left pixel; pixel (x, y) covers the
///   square [x, x+1)×[y, y+1) and its centre is (x+0.5, y+0.5). Everything drawn is clipped to the canvas:
///   drawing outside it is never an error.
/// - `line` draws a segment of the given width with round caps; anti-aliased by default (coverage of each
///   pixel centre blended over what is there), hard-edged with `anti_alias = false`.
/// - `text` draws printable ASCII (other bytes become '?') with stb_easy_font's quads (Debian
///   `libstb-dev`, already needed by image_io), each font unit an exact `scale`×`scale` block, so glyphs stay
///   crisp. The string's top-left is (x, y); capitals are `7 * scale` pixels high, a line `12 * scale`.
///   `Rotation::ccw90` writes bottom-to-top (y-axis labels): (x, y) is then the bottom-left corner.
/// - `save_png` encodes through `gkd::data::encode_png` (one TU of the program defines
///   `GKD_IMAGE_IO_IMPLEMENTATION`, see image_io.hpp) and writes with `gkd::io::write_file_atomically`.
///
/// @code
/// gkd::report::Canvas c(200, 100);                         // white
/// c.line(10, 90, 190, 10, gkd::report::Rgb{214, 39, 40}, 2.0);
/// c.text(10, 10, "loss", gkd::report::colors::black, 2);
/// c.save_png("run/loss.png");
/// @endcode
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/data/image.hpp"
#include "gkd/data/image_io.hpp"
#include "gkd/io/atomic_file.hpp"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace gkd::report {

/// An 8-bit RGB colour.
struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

namespace colors {
inline constexpr Rgb white{255, 255, 255};
inline constexpr Rgb black{0, 0, 0};
inline constexpr Rgb gray{128, 128, 128};
inline constexpr Rgb light_gray{225, 225, 225};
}  // namespace colors

/// `(1 - alpha) * under + alpha * over`, per channel, rounded; alpha clamped to [0, 1].
inline Rgb mix(Rgb under, Rgb over, double alpha) {
  alpha = std::clamp(alpha, 0.0, 1.0);
  auto m = [&](std::uint8_t u, std::uint8_t o) {
    return static_cast<std::uint8_t>(std::lround((1.0 - alpha) * u + alpha * o));
  };
  return {m(under.r, over.r), m(under.g, over.g), m(under.b, over.b)};
}

enum class Rotation { none, ccw90 };

class Canvas {
 public:
  /// A `width`×`height` canvas filled with `background`.
  Canvas(int width, int height, Rgb background = colors::white) : image_(data::Image::zeros(width, height, 3)) {
    fill(background);
  }
  /// The image as RGB: gray (+alpha) is replicated, alpha dropped.
  static Canvas from_image(const data::Image& image) {
    GKD_CHECK(!image.empty() && image.channels >= 1 && image.channels <= 4 &&
                  image.pixels.size() == std::size_t(image.width) * image.height * image.channels,
              "Canvas::from_image", "image " << image.width << "x" << image.height << "x" << image.channels
                                             << " holds " << image.pixels.size() << " bytes");
    Canvas c(image.width, image.height);
    const bool gray = image.channels <= 2;
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x)
        c.set(x, y, gray ? Rgb{image.at(y, x), image.at(y, x), image.at(y, x)}
                         : Rgb{image.at(y, x, 0), image.at(y, x, 1), image.at(y, x, 2)});
    return c;
  }

  [[nodiscard]] int width() const noexcept { return image_.width; }
  [[nodiscard]] int height() const noexcept { return image_.height; }
  [[nodiscard]] bool contains(int x, int y) const noexcept { return x >= 0 && y >= 0 && x < width() && y < height(); }
  /// The colour at (x, y); throws outside the canvas.
  [[nodiscard]] Rgb pixel(int x, int y) const {
    GKD_CHECK(contains(x, y), "Canvas::pixel", "(" << x << ", " << y << ") is outside the " << width() << "x" << height() << " canvas");
    const std::uint8_t* p = &image_.pixels[image_.index(y, x, 0)];
    return {p[0], p[1], p[2]};
  }
  /// The pixels as a 3-channel image (what `gkd::data::encode_png` / `write_png` take).
  [[nodiscard]] const data::Image& image() const noexcept { return image_; }

  /// Sets (x, y) to `c`; ignored outside the canvas.
  void set(int x, int y, Rgb c) noexcept {
    if (!contains(x, y)) return;
    std::uint8_t* p = &image_.pixels[image_.index(y, x, 0)];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  /// Blends `c` over (x, y) with opacity `alpha`; ignored outside the canvas.
  void blend(int x, int y, Rgb c, double alpha) noexcept {
    if (contains(x, y)) set(x, y, mix(pixel_unchecked(x, y), c, alpha));
  }
  void fill(Rgb c) noexcept { fill_rect(0, 0, width(), height(), c); }
  /// Fills the `w`×`h` rectangle whose top-left pixel is (x, y).
  void fill_rect(int x, int y, int w, int h, Rgb c) noexcept {
    const int x0 = std::max(x, 0), y0 = std::max(y, 0);
    const int x1 = std::min<long long>(static_cast<long long>(x) + w, width());
    const int y1 = std::min<long long>(static_cast<long long>(y) + h, height());
    for (int yy = y0; yy < y1; ++yy)
      for (int xx = x0; xx < x1; ++xx) set(xx, yy, c);
  }
  /// The outline of the `w`×`h` rectangle at (x, y), `thickness` pixels inwards.
  void rect(int x, int y, int w, int h, Rgb c, int thickness = 1) noexcept {
    const int t = std::max(1, std::min({thickness, (w + 1) / 2, (h + 1) / 2}));
    fill_rect(x, y, w, t, c);
    fill_rect(x, y + h - t, w, t, c);
    fill_rect(x, y, t, h, c);
    fill_rect(x + w - t, y, t, h, c);
  }
  /// A segment from (x0, y0) to (x1, y1) (continuous coordinates), `line_width` pixels wide, round caps.
  void line(double x0, double y0, double x1, double y1, Rgb c, double line_width = 1.0, bool anti_alias = true) {
    if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) return;
    const double half = std::max(line_width, 0.5) / 2.0, pad = half + 1.0;
    {  // Clip to the canvas grown by pad (Liang-Barsky). A clipped end is computed on the boundary it
       // crosses, not as x0 + t * dx, so that far-away ends (1e300) lose no precision.
      const double ex = x1 - x0, ey = y1 - y0;
      double t0 = 0, t1 = 1, bound0 = 0, bound1 = 0;
      int axis0 = -1, axis1 = -1;  // which boundary (0: x, 1: y) fixed each end; -1: the original end
      auto inside = [&](double p, double q, int axis, double bound) {
        if (p == 0) return q >= 0;
        const double r = q / p;
        if (p < 0 && r > t0) t0 = r, axis0 = axis, bound0 = bound;
        if (p > 0 && r < t1) t1 = r, axis1 = axis, bound1 = bound;
        return t0 <= t1;
      };
      const double xlo = -pad, xhi = width() + pad, ylo = -pad, yhi = height() + pad;
      if (!inside(-ex, x0 - xlo, 0, xlo) || !inside(ex, xhi - x0, 0, xhi) || !inside(-ey, y0 - ylo, 1, ylo) ||
          !inside(ey, yhi - y0, 1, yhi))
        return;
      auto end_point = [&](int axis, double bound, double ox, double oy) -> std::pair<double, double> {
        if (axis == 0) return {bound, y0 + (bound - x0) * (ey / ex)};
        if (axis == 1) return {x0 + (bound - y0) * (ex / ey), bound};
        return {ox, oy};
      };
      const auto [cx0, cy0] = end_point(axis0, bound0, x0, y0);
      const auto [cx1, cy1] = end_point(axis1, bound1, x1, y1);
      if (!std::isfinite(cx0) || !std::isfinite(cy0) || !std::isfinite(cx1) || !std::isfinite(cy1)) return;
      x0 = cx0, y0 = cy0, x1 = cx1, y1 = cy1;
    }
    // Bounding box clamped to the canvas in floating point first (huge coordinates must not overflow int).
    auto clamp_to = [](double v, int n) { return static_cast<int>(std::clamp(v, 0.0, double(n - 1))); };
    const int bx0 = clamp_to(std::floor(std::min(x0, x1) - pad), width()), bx1 = clamp_to(std::ceil(std::max(x0, x1) + pad), width());
    const int by0 = clamp_to(std::floor(std::min(y0, y1) - pad), height()), by1 = clamp_to(std::ceil(std::max(y0, y1) + pad), height());
    const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = by0; y <= by1; ++y)
      for (int x = bx0; x <= bx1; ++x) {
        const double px = x + 0.5 - x0, py = y + 0.5 - y0;
        const double t = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.0, 1.0) : 0.0;
        const double d = std::hypot(px - t * dx, py - t * dy);
        if (anti_alias) {
          const double coverage = std::clamp(half + 0.5 - d, 0.0, 1.0);
          if (coverage > 0) blend(x, y, c, coverage);
        } else if (d <= half) {
          set(x, y, c);
        }
      }
  }
  /// A filled disc of `radius` centred on (cx, cy), anti-aliased.
  void disc(double cx, double cy, double radius, Rgb c) { line(cx, cy, cx, cy, c, 2.0 * radius); }

  /// Width in pixels of `text` drawn at `scale` (the longest line).
  [[nodiscard]] static int text_width(std::string_view text, int scale = 1) {
    std::string s = printable(text);
    return s.empty() ? 0 : stb_easy_font_width(s.data()) * std::max(scale, 1);
  }
  /// Height in pixels of capitals at `scale`.
  [[nodiscard]] static int text_height(int scale = 1) noexcept { return 7 * std::max(scale, 1); }
  /// Draws `text` (see the contract for the anchor and the character set).
  void text(int x, int y, std::string_view text, Rgb c, int scale = 1, Rotation rotation = Rotation::none) {
    std::string s = printable(text);
    if (s.empty()) return;
    scale = std::max(scale, 1);
    // 4 vertices of 16 bytes per quad; stb writes floats, so the buffer is float storage.
    std::vector<float> vertices(s.size() * 4 * 4 * 40);
    const int quads = stb_easy_font_print(0.f, 0.f, s.data(), nullptr, vertices.data(),
                                          static_cast<int>(vertices.size() * sizeof(float)));
    for (int q = 0; q < quads; ++q) {
      const float* v = &vertices[static_cast<std::size_t>(q) * 16];  // vertex 0 at v[0..1], vertex 2 at v[8..9]
      const int qx = static_cast<int>(v[0]) * scale, qy = static_cast<int>(v[1]) * scale;
      const int qw = static_cast<int>(v[8] - v[0]) * scale, qh = static_cast<int>(v[9] - v[1]) * scale;
      if (rotation == Rotation::none) fill_rect(x + qx, y + qy, qw, qh, c);
      else fill_rect(x + qy, y - qx - qw, qh, qw, c);  // font (u, v) -> canvas (x + v, y - u)
    }
  }
  /// Copies `src` with its top-left at (x, y), clipped.
  void blit(const Canvas& src, int x, int y) noexcept {
    for (int yy = 0; yy < src.height(); ++yy)
      for (int xx = 0; xx < src.width(); ++xx) set(x + xx, y + yy, src.pixel_unchecked(xx, yy));
  }

  /// PNG bytes of the canvas.
  [[nodiscard]] std::vector<std::uint8_t> encode_png() const { return data::encode_png(image_); }
  /// Writes the canvas as a PNG file, atomically (readers never see a partial file).
  void save_png(const std::filesystem::path& path) const {
    const std::vector<std::uint8_t> bytes = encode_png();
    io::write_file_atomically(path, std::as_bytes(std::span<const std::uint8_t>(bytes)));
  }

 private:
  [[nodiscard]] Rgb pixel_unchecked(int x, int y) const noexcept {
    const std::uint8_t* p = &image_.pixels[image_.index(y, x, 0)];
    return {p[0], p[1], p[2]};
  }
  static std::string printable(std::string_view text) {
    std::string s(text);
    for (char& ch : s)
      if (ch != '\n' && (static_cast<unsigned char>(ch) < 32 || static_cast<unsigned char>(ch) > 126)) ch = '?';
    return s;
  }

  data::Image image_;
};

}  // namespace gkd::report
