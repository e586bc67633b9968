// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The roundings that the autocast ops apply (see gkd/core/autocast.hpp for the user's side, the
/// `gkd::Autocast` scope). Each op rounds its own inputs, outputs and gradients, so it stays one node of
/// the graph, and float64 never rounds.
/// @code
///   const Precision p = detail::autocast_for<T>();       // the thread's precision, f32 for double
///   const Tensor<T> xr = detail::rounded_copy(x, p);       // contiguous; never aliases x when rounding
///   detail::round_in_place(y, p);
/// @endcode
#include <type_traits>

#include "gkd/core/autocast.hpp"
#include "gkd/core/tensor.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/autocast.hpp"
#endif

namespace gkd::detail {

/// The precision that an op on T runs in now: the thread's autocast precision for float32, f32 for float64.
template <Real T>
Precision autocast_for() {
  if constexpr (std::is_same_v<T, float>) return autocast_precision();
  return Precision::f32;
}

/// Rounds the elements of `t` (contiguous, not shared with anyone) to `p`, on its device; an undefined
/// `t` is left alone.
template <Real T>
void round_in_place(Tensor<T>& t, Precision p) {
  if constexpr (std::is_same_v<T, float>) {
    if (p == Precision::f32 || !t.defined() || t.numel() == 0) return;
    if (t.device().is_cuda()) {
#if GKD_DETAIL_CUDA_LINKED
      cuda::round_to(t.data(), t.numel(), p);
      return;
#else
      cuda_not_linked("autocast", t.device());
#endif
    }
    float* d = t.data();
    const std::int64_t n = t.numel();
#pragma omp parallel for if (n > (1 << 16))
    for (std::int64_t i = 0; i < n; ++i) d[i] = round_to(p, d[i]);
  }
}

/// `t` as a contiguous tensor rounded to `p`: a fresh copy when p rounds, `contiguous_copy_if_needed`
/// otherwise.
template <Real T>
Tensor<T> rounded_copy(const Tensor<T>& t, Precision p) {
  if (p == Precision::f32 || !t.defined()) return t.defined() ? t.contiguous_copy_if_needed() : t;
  Tensor<T> out = Tensor<T>::empty(t.shape(), t.device());
  copy_into(out, t);
  round_in_place(out, p);
  return out;
}

}  // namespace gkd::detail
