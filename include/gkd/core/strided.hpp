// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Internal: walking several equally shaped strided layouts in lock step. Used by contiguous(),
/// broadcasting elementwise kernels and broadcast-gradient reduction.
#include <array>
#include <cstdint>
#include <vector>

#include "gkd/core/shape.hpp"

namespace gkd::detail {

/// Strides of `from` (a shape broadcastable to `to`) expressed in `to`'s dims: 0 on broadcast dims.
inline Strides broadcast_strides(const Shape& from, const Strides& from_strides, const Shape& to) {
  Strides out(to.size(), 0);
  const std::size_t lead = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i)
    out[lead + i] = from[i] == 1 && to[lead + i] != 1 ? 0 : from_strides[i];
  return out;
}

/// Calls `f(offsets)` for every index of `shape` in row-major order, where `offsets[k]` is the
/// element offset of that index in layout k (its strides are `strides[k]`).
template <std::size_t N, class F>
void strided_for_each(const Shape& shape, const std::array<const Strides*, N>& strides, F&& f) {
  if (numel(shape) == 0) return;
  std::array<std::int64_t, N> offset{};
  if (shape.empty()) {
    f(offset);
    return;
  }
  const std::size_t nd = shape.size();
  const std::int64_t inner = shape[nd - 1];
  std::array<std::int64_t, N> inner_stride{};
  for (std::size_t k = 0; k < N; ++k) inner_stride[k] = (*strides[k])[nd - 1];
  std::vector<std::int64_t> index(nd, 0);
  while (true) {
    auto o = offset;
    for (std::int64_t i = 0; i < inner; ++i) {
      f(o);
      for (std::size_t k = 0; k < N; ++k) o[k] += inner_stride[k];
    }
    // odometer over the outer dims
    std::size_t d = nd - 1;
    while (true) {
      if (d == 0) return;
      --d;
      ++index[d];
      for (std::size_t k = 0; k < N; ++k) offset[k] += (*strides[k])[d];
      if (index[d] < shape[d]) break;
      for (std::size_t k = 0; k < N; ++k) offset[k] -= (*strides[k])[d] * shape[d];
      index[d] = 0;
    }
  }
}

}  // namespace gkd::detail
