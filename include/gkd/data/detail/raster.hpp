// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private raster helpers of the synthetic generators and the augmentations: a float plane, seed
/// mixing, smooth fractal noise, separable Gaussian blur, box downsampling, bilinear sampling and a
/// JPEG-like 8×8 DCT quantisation. Not part of the public API.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "gkd/core/random.hpp"

namespace gkd::data::detail {

/// A row-major float image plane.
struct Plane {
  int w = 0, h = 0;
  std::vector<float> v;
  Plane() = default;
  Plane(int width, int height, float fill = 0.f) : w(width), h(height), v(std::size_t(width) * height, fill) {}
  float& at(int x, int y) { return v[std::size_t(y) * w + x]; }
  [[nodiscard]] float at(int x, int y) const { return v[std::size_t(y) * w + x]; }
  /// Clamp-to-edge read.
  [[nodiscard]] float clamped(int x, int y) const { return at(std::clamp(x, 0, w - 1), std::clamp(y, 0, h - 1)); }
  /// Bilinear read at continuous pixel coordinates (pixel centres at integers); `outside` beyond the border.
  [[nodiscard]] float bilinear(double x, double y, float outside) const {
    if (x < -0.5 || y < -0.5 || x > w - 0.5 || y > h - 0.5) return outside;
    x = std::clamp(x, 0.0, double(w - 1));
    y = std::clamp(y, 0.0, double(h - 1));
    const int x0 = std::min(int(x), w - 2 < 0 ? 0 : w - 2), y0 = std::min(int(y), h - 2 < 0 ? 0 : h - 2);
    const int x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
    const double fx = x - x0, fy = y - y0;
    return float((1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x1, y0)) + fy * ((1 - fx) * at(x0, y1) + fx * at(x1, y1)));
  }
  /// Nearest-neighbour read; `outside` beyond the border.
  [[nodiscard]] float nearest(double x, double y, float outside) const {
    const int xi = int(std::lround(x)), yi = int(std::lround(y));
    if (xi < 0 || yi < 0 || xi >= w || yi >= h) return outside;
    return at(xi, yi);
  }
};

/// splitmix64 finaliser: a well-mixed 64-bit value from any input.
inline std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/// A seed derived from a base seed and one more value (index, domain, stream id).
inline std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t value) { return splitmix64(seed ^ splitmix64(value + 0x5851F42D4C957F2Dull)); }
/// A 64-bit hash of a string (FNV-1a), for mixing domain names into seeds.
inline std::uint64_t hash_string(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

/// Smooth random field in about [-1, 1]: value noise on a lattice of `cells` cells across the larger
/// side, smoothstep-interpolated, summed over `octaves` octaves (each twice as fine, amplitude × `gain`).
inline Plane fractal_noise(int w, int h, double cells, int octaves, double gain, Generator& gen) {
  Plane out(w, h);
  double amplitude = 1.0, total = 0.0;
  const int side = std::max(w, h);
  for (int o = 0; o < octaves; ++o) {
    const int n = int(std::ceil(cells)) + 2;
    std::vector<float> lattice(std::size_t(n) * n);
    for (auto& v : lattice) v = float(gen.uniform(-1.0, 1.0));
    const double step = cells / side;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const double gx = x * step, gy = y * step;
        const int ix = std::min(int(gx), n - 2), iy = std::min(int(gy), n - 2);
        double fx = gx - ix, fy = gy - iy;
        fx = fx * fx * (3 - 2 * fx);
        fy = fy * fy * (3 - 2 * fy);
        const auto L = [&](int a, int b) { return double(lattice[std::size_t(b) * n + a]); };
        const double v = (1 - fy) * ((1 - fx) * L(ix, iy) + fx * L(ix + 1, iy)) + fy * ((1 - fx) * L(ix, iy + 1) + fx * L(ix + 1, iy + 1));
        out.at(x, y) += float(amplitude * v);
      }
    total += amplitude;
    amplitude *= gain;
    cells *= 2;
  }
  for (auto& v : out.v) v = float(v / total);
  return out;
}

/// In-place separable Gaussian blur with clamp-to-edge borders; no-op for sigma <= 0.
inline void gaussian_blur(Plane& p, double sigma) {
  if (sigma <= 0.0 || p.w == 0 || p.h == 0) return;
  const int r = std::max(1, int(std::ceil(3.0 * sigma)));
  std::vector<float> k(std::size_t(2 * r + 1));
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[std::size_t(i + r)] = float(std::exp(-0.5 * i * i / (sigma * sigma)));
  for (auto& v : k) v = float(v / sum);
  std::vector<float> tmp(p.v.size());
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x) {
      float acc = 0;
      for (int i = -r; i <= r; ++i) acc += k[std::size_t(i + r)] * p.at(std::clamp(x + i, 0, p.w - 1), y);
      tmp[std::size_t(y) * p.w + x] = acc;
    }
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x) {
      float acc = 0;
      for (int i = -r; i <= r; ++i) acc += k[std::size_t(i + r)] * tmp[std::size_t(std::clamp(y + i, 0, p.h - 1)) * p.w + x];
      p.at(x, y) = acc;
    }
}

/// Mean over factor×factor blocks (w and h must be multiples of factor).
inline Plane downsample_box(const Plane& p, int factor) {
  Plane out(p.w / factor, p.h / factor);
  const float inv = 1.f / float(factor * factor);
  for (int y = 0; y < out.h; ++y)
    for (int x = 0; x < out.w; ++x) {
      float acc = 0;
      for (int j = 0; j < factor; ++j)
        for (int i = 0; i < factor; ++i) acc += p.at(x * factor + i, y * factor + j);
      out.at(x, y) = acc * inv;
    }
  return out;
}

/// JPEG-like compression artefacts on an RGB triple of planes in [0, 1]: YCbCr conversion, 8×8 DCT,
/// quantisation with the JPEG standard tables scaled for `quality` (1..100), inverse. No entropy coding.
inline void jpeg_artifacts(std::array<Plane*, 3> rgb, int quality) {
  static constexpr std::array<int, 64> luma{16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
                                            14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
                                            18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
                                            49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
  static constexpr std::array<int, 64> chroma{17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                                              24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
                                              99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
                                              99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};
  quality = std::clamp(quality, 1, 100);
  const double scale = quality < 50 ? 5000.0 / quality : 200.0 - 2.0 * quality;
  double basis[8][8];
  for (int u = 0; u < 8; ++u)
    for (int x = 0; x < 8; ++x)
      basis[u][x] = (u == 0 ? std::sqrt(0.125) : 0.5) * std::cos((2 * x + 1) * u * std::numbers::pi / 16.0);
  const int w = rgb[0]->w, h = rgb[0]->h;
  std::array<Plane, 3> ycc{Plane(w, h), Plane(w, h), Plane(w, h)};
  for (std::size_t i = 0; i < ycc[0].v.size(); ++i) {
    const double r = 255 * rgb[0]->v[i], g = 255 * rgb[1]->v[i], b = 255 * rgb[2]->v[i];
    ycc[0].v[i] = float(0.299 * r + 0.587 * g + 0.114 * b - 128);
    ycc[1].v[i] = float(-0.168736 * r - 0.331264 * g + 0.5 * b);
    ycc[2].v[i] = float(0.5 * r - 0.418688 * g - 0.081312 * b);
  }
  for (int c = 0; c < 3; ++c) {
    const auto& table = c == 0 ? luma : chroma;
    double q[64];
    for (int i = 0; i < 64; ++i) q[i] = std::clamp(std::floor((table[std::size_t(i)] * scale + 50) / 100), 1.0, 255.0);
    for (int by = 0; by < h; by += 8)
      for (int bx = 0; bx < w; bx += 8) {
        double block[8][8], tmp[8][8], coef[8][8];
        for (int y = 0; y < 8; ++y)
          for (int x = 0; x < 8; ++x) block[y][x] = ycc[c].clamped(bx + x, by + y);
        for (int y = 0; y < 8; ++y)
          for (int u = 0; u < 8; ++u) {
            double s = 0;
            for (int x = 0; x < 8; ++x) s += basis[u][x] * block[y][x];
            tmp[y][u] = s;
          }
        for (int v = 0; v < 8; ++v)
          for (int u = 0; u < 8; ++u) {
            double s = 0;
            for (int y = 0; y < 8; ++y) s += basis[v][y] * tmp[y][u];
            coef[v][u] = std::round(s / q[v * 8 + u]) * q[v * 8 + u];
          }
        for (int y = 0; y < 8; ++y)
          for (int u = 0; u < 8; ++u) {
            double s = 0;
            for (int v = 0; v < 8; ++v) s += basis[v][y] * coef[v][u];
            tmp[y][u] = s;
          }
        for (int y = 0; y < 8 && by + y < h; ++y)
          for (int x = 0; x < 8 && bx + x < w; ++x) {
            double s = 0;
            for (int u = 0; u < 8; ++u) s += basis[u][x] * tmp[y][u];
            ycc[c].at(bx + x, by + y) = float(s);
          }
      }
  }
  for (std::size_t i = 0; i < ycc[0].v.size(); ++i) {
    const double Y = ycc[0].v[i] + 128, cb = ycc[1].v[i], cr = ycc[2].v[i];
    rgb[0]->v[i] = float(std::clamp((Y + 1.402 * cr) / 255, 0.0, 1.0));
    rgb[1]->v[i] = float(std::clamp((Y - 0.344136 * cb - 0.714136 * cr) / 255, 0.0, 1.0));
    rgb[2]->v[i] = float(std::clamp((Y + 1.772 * cb) / 255, 0.0, 1.0));
  }
}

}  // namespace gkd::data::detail
