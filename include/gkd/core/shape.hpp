// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Shapes, strides and the dimension arithmetic shared by every op: numel, contiguous strides,
/// negative-dim normalisation and NumPy/PyTorch broadcasting.
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "gkd/core/error.hpp"

namespace gkd {

/// Sizes of each dimension, outermost first (NCHW for images). A scalar has an empty shape.
using Shape = std::vector<std::int64_t>;
/// Element strides of each dimension.
using Strides = std::vector<std::int64_t>;

/// Prints a shape as `[2, 3, 4]`.
inline std::string to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

/// Number of elements of a shape (1 for a scalar).
inline std::int64_t numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

/// Row-major strides of a contiguous tensor of this shape.
inline Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  std::int64_t step = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = step;
    step *= shape[i] > 0 ? shape[i] : 1;
  }
  return strides;
}

/// Maps a possibly negative dim into [0, ndim) or throws naming `op`.
inline std::size_t normalize_dim(std::int64_t dim, std::size_t ndim, std::string_view op) {
  const auto n = static_cast<std::int64_t>(ndim);
  GKD_CHECK(dim >= -n && dim < n, op,
            "dim " << dim << " is out of range for a tensor of " << ndim << " dims");
  return static_cast<std::size_t>(dim < 0 ? dim + n : dim);
}

/// The broadcast shape of `a` and `b` (trailing dims aligned, size-1 dims stretched).
inline Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    GKD_CHECK(da == db || da == 1 || db == 1, op,
              "shapes " << to_string(a) << " and " << to_string(b) << " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace gkd

