// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Hausdorff distance (HD) and its 95th percentile (HD95) between two binary 2-D masks, in pixels or in
/// physical units through a (row, column) spacing.
///
/// Definitions (those of medpy.metric.binary.hd / hd95, and what tools/golden/metrics.py recomputes
/// independently with scipy):
/// - The surface of a mask is its foreground pixels with at least one 4-neighbour that is background or
///   outside the image (scipy `binary_erosion` with a cross, border counted as background).
/// - d(a, S) is the Euclidean distance between pixel centres; directed distances go from every surface pixel
///   of one mask to the nearest surface pixel of the other, computed exactly with a linear-time Euclidean
///   distance transform (Felzenszwalb & Huttenlocher).
/// - HD = max of both directed maxima; HD95 = the 95th percentile (linear interpolation, numpy's default)
///   of the two directed distance lists concatenated.
/// - Empty masks: both empty → 0 (identical); exactly one empty → NaN (undefined; callers average with
///   a NaN-aware mean and report how many were undefined).
///
/// @code
/// auto d = gkd::metrics::hausdorff(pred, target);   // H×W tensors, nonzero = foreground
/// double hd = d.hd, hd95 = d.hd95;
/// @endcode
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::metrics {

struct HausdorffResult {
  double hd;    ///< symmetric Hausdorff distance
  double hd95;  ///< 95th percentile of both directed surface distances together
};

namespace detail {

/// Squared Euclidean distance transform in 1-D (lower envelope of parabolas), in place on f[0..n).
inline void edt_1d(std::vector<double>& f, std::size_t n, double spacing2, std::vector<double>& d,
                   std::vector<std::size_t>& v, std::vector<double>& z) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::size_t k = 0;
  std::size_t first = n;
  for (std::size_t q = 0; q < n; ++q)
    if (f[q] < inf) {
      first = q;
      break;
    }
  if (first == n) return;  // no seed: everything stays infinite
  v[0] = first;
  z[0] = -inf;
  z[1] = inf;
  for (std::size_t q = first + 1; q < n; ++q) {
    if (f[q] == inf) continue;
    auto intersect = [&](std::size_t p) {
      const double qd = double(q), pd = double(p);
      return ((f[q] + spacing2 * qd * qd) - (f[p] + spacing2 * pd * pd)) / (2.0 * spacing2 * (qd - pd));
    };
    double s = intersect(v[k]);
    while (s <= z[k]) s = intersect(v[--k]);  // z[0] = -inf stops the loop at k = 0
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = inf;
  }
  k = 0;
  for (std::size_t q = 0; q < n; ++q) {
    while (z[k + 1] < double(q)) ++k;
    const double dq = double(q) - double(v[k]);
    d[q] = spacing2 * dq * dq + f[v[k]];
  }
  std::copy(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(n), f.begin());
}

/// Exact squared distance from every pixel to the nearest seed pixel (seed[i] != 0).
inline std::vector<double> squared_edt(const std::vector<std::uint8_t>& seed, std::int64_t h, std::int64_t w,
                                       double sy, double sx) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::vector<double> g(seed.size());
  for (std::size_t i = 0; i < seed.size(); ++i) g[i] = seed[i] ? 0.0 : inf;
  const std::size_t m = static_cast<std::size_t>(std::max(h, w));
  std::vector<double> f(m), d(m), z(m + 1);
  std::vector<std::size_t> v(m);
  for (std::int64_t x = 0; x < w; ++x) {  // columns
    for (std::int64_t y = 0; y < h; ++y) f[y] = g[y * w + x];
    edt_1d(f, std::size_t(h), sy * sy, d, v, z);
    for (std::int64_t y = 0; y < h; ++y) g[y * w + x] = f[y];
  }
  for (std::int64_t y = 0; y < h; ++y) {  // rows
    std::copy(g.begin() + y * w, g.begin() + (y + 1) * w, f.begin());
    edt_1d(f, std::size_t(w), sx * sx, d, v, z);
    std::copy(f.begin(), f.begin() + w, g.begin() + y * w);
  }
  return g;
}

inline std::vector<std::uint8_t> surface(const std::vector<std::uint8_t>& m, std::int64_t h, std::int64_t w) {
  std::vector<std::uint8_t> s(m.size(), 0);
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x) {
      if (!m[y * w + x]) continue;
      const bool inner = y > 0 && y + 1 < h && x > 0 && x + 1 < w && m[(y - 1) * w + x] && m[(y + 1) * w + x] &&
                         m[y * w + x - 1] && m[y * w + x + 1];
      s[y * w + x] = !inner;
    }
  return s;
}

/// numpy.percentile(values, q) with linear interpolation (values are sorted in place).
inline double percentile(std::vector<double>& values, double q) {
  std::sort(values.begin(), values.end());
  const double pos = q / 100.0 * double(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - double(lo)) * (values[hi] - values[lo]);
}

}  // namespace detail

/// HD and HD95 between two H×W masks (nonzero = foreground); `spacing` = (row, column) pixel size.
template <Real T>
HausdorffResult hausdorff(const Tensor<T>& prediction, const Tensor<T>& target, std::array<double, 2> spacing = {1.0, 1.0}) {
  GKD_CHECK(prediction.dim() == 2 && prediction.shape() == target.shape(), "hausdorff",
            "expects two H×W masks of one shape, got " << to_string(prediction.shape()) << " and "
                                                     << to_string(target.shape()));
  GKD_CHECK(spacing[0] > 0 && spacing[1] > 0, "hausdorff", "spacing must be positive");
  const std::int64_t h = prediction.size(0), w = prediction.size(1);
  auto binarise = [](const Tensor<T>& t) {
    const Tensor<T> c = t.cpu().contiguous();
    std::vector<std::uint8_t> m(static_cast<std::size_t>(c.numel()));
    for (std::size_t i = 0; i < m.size(); ++i) m[i] = c.data()[i] != T(0);
    return m;
  };
  const auto a = binarise(prediction), b = binarise(target);
  const bool a_empty = std::none_of(a.begin(), a.end(), [](auto v) { return v != 0; });
  const bool b_empty = std::none_of(b.begin(), b.end(), [](auto v) { return v != 0; });
  if (a_empty && b_empty) return {0.0, 0.0};
  if (a_empty || b_empty) return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  const auto sa = detail::surface(a, h, w), sb = detail::surface(b, h, w);
  const auto da = detail::squared_edt(sa, h, w, spacing[0], spacing[1]);
  const auto db = detail::squared_edt(sb, h, w, spacing[0], spacing[1]);
  std::vector<double> all;
  double hd = 0;
  for (std::size_t i = 0; i < sa.size(); ++i) {
    if (sa[i]) all.push_back(std::sqrt(db[i]));
    if (sb[i]) all.push_back(std::sqrt(da[i]));
  }
  for (double v : all) hd = std::max(hd, v);
  return {hd, detail::percentile(all, 95.0)};
}

}  // namespace gkd::metrics
