// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: launchers of the reduction, softmax and cross-entropy kernels (contiguous
/// device pointers). A tensor viewed along one dim is (outer, len, inner) with the dim in the middle.
#include <cstdint>

namespace gkd::cuda {

/// *out = sum of x[0..n) (CUB device reduction, accumulated in T; deterministic for a given n); its
/// scratch comes from cuda:`device`, the device of x.
template <class T>
void launch_sum_all(const T* x, T* out, std::int64_t n, int device);
/// Softmax (or log-softmax when `log`) over the middle dim of an (outer, len, inner) array.
template <class T>
void launch_softmax(const T* x, T* y, std::int64_t outer, std::int64_t len, std::int64_t inner, bool log);
/// Its backward: gx from the output y and its gradient g.
template <class T>
void launch_softmax_backward(const T* g, const T* y, T* gx, std::int64_t outer, std::int64_t len, std::int64_t inner,
                             bool log);
/// Per position p of logits (outer, classes, inner): lse[p] = logsumexp_c x, loss[p] = w[t](lse − x_t)
/// and wsum[p] = w[t] (both 0 where t == ignore_index). `weight` may be nullptr (all ones).
template <class T>
void launch_cross_entropy(const T* x, const T* target, const T* weight, std::int64_t outer, std::int64_t classes,
                          std::int64_t inner, std::int64_t ignore_index, double* lse, T* loss, T* wsum);
/// dx = coef_p w[t_p] (softmax − onehot(t_p)), coef_p = g_map[p], or (when `g_map` is nullptr) the
/// device scalar *g_scalar divided by the device scalar *divisor (by 1 when `divisor` is nullptr).
template <class T>
void launch_cross_entropy_backward(const T* x, const T* target, const T* weight, const double* lse, const T* g_map,
                                   const T* g_scalar, const T* divisor, std::int64_t outer, std::int64_t classes,
                                   std::int64_t inner, std::int64_t ignore_index, T* dx);

/// Per position (o, i) of an (outer, len, inner) array: the first maximal (or minimal, when !is_max)
/// element along the middle dim, compared as the CPU does (a NaN at index 0 wins, later NaNs never).
/// Each of `values` (the element), `index` (its index) and `index_value` (its index as T) may be
/// nullptr; they are written at o * inner + i.
template <class T>
void launch_extremum(const T* x, T* values, std::int64_t* index, T* index_value, std::int64_t outer, std::int64_t len,
                     std::int64_t inner, bool is_max);
/// dx[o, index[o, i], i] = g[o, i] for an (outer, len, inner) dx that the caller zeroed.
template <class T>
void launch_scatter_along(const T* g, const std::int64_t* index, T* dx, std::int64_t outer, std::int64_t len,
                          std::int64_t inner);

/// Number of targets that are neither an integer class in [0, classes) nor ignore_index (waits for it).
/// `count`: one device scratch value on the targets' device.
template <class T>
std::int64_t count_invalid_targets(const T* target, std::int64_t n, std::int64_t classes, std::int64_t ignore_index,
                                   unsigned long long* count);

}  // namespace gkd::cuda
