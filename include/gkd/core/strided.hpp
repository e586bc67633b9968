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

/// A shape and N stride sets over it, with the dims merged that every layout steps through as through
/// one (stride[d] == stride[d + 1] * shape[d + 1] in all of them) and dims of size 1 dropped. Walking it
/// in row-major order visits the same offsets in the same order as walking the original.
template <std::size_t N>
struct MergedLayout {
  Shape shape;                    ///< at least one dim
  std::array<Strides, N> strides;

  MergedLayout(const Shape& full, const std::array<const Strides*, N>& full_strides) {
    for (std::size_t d = 0; d < full.size(); ++d) {
      if (full[d] == 1) continue;
      bool merge = !shape.empty();
      for (std::size_t k = 0; k < N; ++k) merge = merge && strides[k].back() == (*full_strides[k])[d] * full[d];
      if (merge) {
        shape.back() *= full[d];
        for (std::size_t k = 0; k < N; ++k) strides[k].back() = (*full_strides[k])[d];
      } else {
        shape.push_back(full[d]);
        for (std::size_t k = 0; k < N; ++k) strides[k].push_back((*full_strides[k])[d]);
      }
    }
    if (shape.empty()) {
      shape.push_back(1);
      for (auto& st : strides) st.push_back(0);
    }
  }
  /// Length of the innermost dim: one run.
  [[nodiscard]] std::int64_t run_length() const { return shape.back(); }
  [[nodiscard]] std::int64_t runs() const { return numel(shape) / shape.back(); }
  /// The offsets where run r (in row-major order) starts.
  [[nodiscard]] std::array<std::int64_t, N> run_start(std::int64_t r) const {
    std::array<std::int64_t, N> o{};
    for (std::size_t d = shape.size() - 1; d-- > 0;) {
      const std::int64_t i = r % shape[d];
      r /= shape[d];
      for (std::size_t k = 0; k < N; ++k) o[k] += i * strides[k][d];
    }
    return o;
  }
};

/// Calls `f(offsets)` for every index of `shape` in row-major order, where `offsets[k]` is the
/// element offset of that index in layout k (its strides are `strides[k]`).
template <std::size_t N, class F>
void strided_for_each(const Shape& shape, const std::array<const Strides*, N>& strides, F&& f) {
  if (numel(shape) == 0) return;
  const MergedLayout<N> m(shape, strides);
  const std::int64_t inner = m.run_length(), nd = static_cast<std::int64_t>(m.shape.size());
  std::array<std::int64_t, N> inner_stride{}, offset{};
  for (std::size_t k = 0; k < N; ++k) inner_stride[k] = m.strides[k].back();
  std::vector<std::int64_t> index(m.shape.size(), 0);
  while (true) {
    auto o = offset;
    for (std::int64_t i = 0; i < inner; ++i) {
      f(o);
      for (std::size_t k = 0; k < N; ++k) o[k] += inner_stride[k];
    }
    // odometer over the outer dims
    std::int64_t d = nd - 1;
    while (true) {
      if (d == 0) return;
      --d;
      const auto du = static_cast<std::size_t>(d);
      ++index[du];
      for (std::size_t k = 0; k < N; ++k) offset[k] += m.strides[k][du];
      if (index[du] < m.shape[du]) break;
      for (std::size_t k = 0; k < N; ++k) offset[k] -= m.strides[k][du] * m.shape[du];
      index[du] = 0;
    }
  }
}

}  // namespace gkd::detail
