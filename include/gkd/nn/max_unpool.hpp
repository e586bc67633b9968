// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Max pooling that remembers where each maximum came from, and `max_unpool2d`, which writes values
/// back to those positions (zeros elsewhere) — ENet's encoder/decoder pairing, as PyTorch's
/// `MaxPool2d(return_indices=True)` and `MaxUnpool2d`. The indices are plane offsets (h * W + w) of
/// the first maximum of each window, PyTorch's tie rule. `max_unpool2d` is differentiable in its values.
/// @code
///   auto pooled = gkd::max_pool2d(x, 2);                 // values, differentiable
///   auto where = gkd::nn::max_pool2d_indices(x, 2);       // positions, no gradient
///   auto restored = gkd::nn::max_unpool2d(pooled, where); // x's shape, maxima in place
/// @endcode
#include <cmath>
#include <memory>
#include <vector>

#include "gkd/ops/pool.hpp"

namespace gkd::nn {

/// The argmax positions of a k x k, stride-k max pooling of an input of `input_shape`.
struct PoolIndices {
  Shape input_shape;
  Shape pooled_shape;
  std::shared_ptr<const std::vector<std::int64_t>> index;  ///< per pooled element: h * W + w in its plane
};

/// Positions of the maxima of max_pool2d(x, kernel) (stride = kernel, no padding).
template <Real T>
PoolIndices max_pool2d_indices(const Tensor<T>& x, Size2 kernel) {
  gkd::detail::check_cpu(x, "max_pool2d_indices");
  GKD_CHECK(x.dim() == 4, "max_pool2d_indices", "input must be 4-D, got " << to_string(x.shape()));
  GKD_CHECK(kernel.h > 0 && kernel.w > 0 && x.shape()[2] >= kernel.h && x.shape()[3] >= kernel.w,
            "max_pool2d_indices", "kernel " << kernel << " does not fit input " << to_string(x.shape()));
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  const std::int64_t planes = x.shape()[0] * x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const std::int64_t oh = H / kernel.h, ow = W / kernel.w;
  auto index = std::make_shared<std::vector<std::int64_t>>(static_cast<std::size_t>(planes * oh * ow));
  const T* px = xc.data();
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t i = 0; i < oh; ++i)
      for (std::int64_t j = 0; j < ow; ++j) {
        std::int64_t at = (i * kernel.h) * W + j * kernel.w;
        T best = px[p * H * W + at];
        for (std::int64_t a = 0; a < kernel.h; ++a)
          for (std::int64_t b = 0; b < kernel.w; ++b) {
            const std::int64_t o = (i * kernel.h + a) * W + j * kernel.w + b;
            const T v = px[p * H * W + o];
            if (v > best || (std::isnan(v) && !std::isnan(best))) best = v, at = o;
          }
        (*index)[static_cast<std::size_t>((p * oh + i) * ow + j)] = at;
      }
  return {x.shape(), {x.shape()[0], x.shape()[1], oh, ow}, index};
}

/// Scatters x (the pooled shape) into zeros of the pooled input's shape at the remembered positions.
/// Differentiable in x: the gradient gathers from the same positions.
template <Real T>
Tensor<T> max_unpool2d(const Tensor<T>& x, const PoolIndices& where) {
  constexpr std::string_view op = "max_unpool2d";
  gkd::detail::check_cpu(x, op);
  GKD_CHECK(x.shape() == where.pooled_shape, op,
            "input " << to_string(x.shape()) << " does not match the pooled shape " << to_string(where.pooled_shape)
                     << " of the indices");
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::zeros(where.input_shape);
  const std::int64_t plane_in = where.input_shape[2] * where.input_shape[3];
  const std::int64_t plane_out = where.pooled_shape[2] * where.pooled_shape[3];
  const std::int64_t planes = where.pooled_shape[0] * where.pooled_shape[1];
  const auto& idx = *where.index;
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t i = 0; i < plane_out; ++i)
      y.data()[p * plane_in + idx[static_cast<std::size_t>(p * plane_out + i)]] = xc.data()[p * plane_out + i];
  return record(op, y, {x}, [where, plane_in, plane_out, planes](const Tensor<T>& grad) {
    const Tensor<T> gc = grad.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(where.pooled_shape);
    const auto& ix = *where.index;
    for (std::int64_t p = 0; p < planes; ++p)
      for (std::int64_t i = 0; i < plane_out; ++i)
        dx.data()[p * plane_out + i] = gc.data()[p * plane_in + ix[static_cast<std::size_t>(p * plane_out + i)]];
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace gkd::nn

GKD_REGISTER_OPS(nn_max_unpool, "max_unpool2d")
