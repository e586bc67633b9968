// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: launchers of the resize kernels over `planes` contiguous (in_h, in_w) input
/// planes and (out_h, out_w) output planes, with per-output-row and per-output-column tables.
#include <cstdint>

namespace gkd::cuda {

/// Source rows/columns (i0, i1) and weights (l0, l1) of each output row (h*) and column (w*).
template <class T>
struct BilinearTables {
  const std::int64_t *h0, *h1, *w0, *w1;
  const T *hl0, *hl1, *wl0, *wl1;
};

/// Plane geometry shared by the resize kernels.
struct ResizeGeometry {
  std::int64_t planes, in_h, in_w, out_h, out_w;
};

template <class T>
void launch_bilinear(const T* x, T* y, const ResizeGeometry& g, const BilinearTables<T>& t);
/// dx (zeroed by the caller) += the transpose of the bilinear map applied to dy (atomic adds).
template <class T>
void launch_bilinear_backward(const T* dy, T* dx, const ResizeGeometry& g, const BilinearTables<T>& t);
/// y[p, oh, ow] = x[p, rows[oh], cols[ow]].
template <class T>
void launch_nearest(const T* x, T* y, const ResizeGeometry& g, const std::int64_t* rows, const std::int64_t* cols);
/// dx (zeroed by the caller)[p, rows[oh], cols[ow]] += dy[p, oh, ow] (atomic adds).
template <class T>
void launch_nearest_backward(const T* dy, T* dx, const ResizeGeometry& g, const std::int64_t* rows,
                             const std::int64_t* cols);

}  // namespace gkd::cuda
