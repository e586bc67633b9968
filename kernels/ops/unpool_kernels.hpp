// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: launchers of the max-pooling-with-indices and max-unpooling kernels over
/// `planes` contiguous planes (device pointers). A pooled plane has out_h x out_w elements, an
/// unpooled one in_h x in_w; index holds plane offsets into the unpooled planes.
#include <cstdint>

namespace gkd::cuda {

/// index = the offset (h * in_w + w) of the first maximum (the first NaN, if any) of each
/// kh x kw, stride-(kh, kw) window of x.
template <class T>
void launch_max_pool_indices(const T* x, std::int64_t* index, std::int64_t planes, std::int64_t in_h,
                             std::int64_t in_w, std::int64_t out_h, std::int64_t out_w, std::int64_t kh,
                             std::int64_t kw);
/// y[plane p, index[p, i]] = x[p, i] (y already zeroed; the positions of a plane are distinct).
template <class T>
void launch_max_unpool(const T* x, const std::int64_t* index, T* y, std::int64_t planes, std::int64_t plane_in,
                       std::int64_t plane_out);
/// dx[p, i] = dy[plane p, index[p, i]].
template <class T>
void launch_max_unpool_backward(const T* dy, const std::int64_t* index, T* dx, std::int64_t planes,
                                std::int64_t plane_in, std::int64_t plane_out);

}  // namespace gkd::cuda
