// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Max pooling that remembers where each maximum came from, and `max_unpool2d`, which writes values
/// back to those positions (zeros elsewhere) — ENet's encoder/decoder pairing, as PyTorch's
/// `MaxPool2d(return_indices=True)` and `MaxUnpool2d`. The indices are plane offsets (h * W + w) of
/// the first maximum of each window, PyTorch's tie rule. `max_unpool2d` is differentiable in its values.
/// On a GPU (gkd::cuda linked) both run there: the positions stay in device memory
/// (gkd/cuda/unpool.hpp) and equal the CPU's.
/// @code
///   auto pooled = gkd::max_pool2d(x, 2);                 // values, differentiable
///   auto where = gkd::nn::max_pool2d_indices(x, 2);       // positions, no gradient
///   auto restored = gkd::nn::max_unpool2d(pooled, where); // x's shape, maxima in place
/// @endcode
#include <cmath>
#include <memory>
#include <string_view>
#include <vector>

#include "gkd/ops/pool.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/unpool.hpp"
#endif

namespace gkd::nn {

/// The argmax positions of a k x k, stride-k max pooling of an input of `input_shape`.
struct PoolIndices {
  Shape input_shape;
  Shape pooled_shape;
  std::shared_ptr<const std::vector<std::int64_t>> index;  ///< host input: per pooled element h * W + w in its plane
  Device device = kCPU;                                     ///< where the input (and the positions) live
  std::shared_ptr<const std::int64_t> device_index;         ///< GPU input: the same positions in device memory

  /// The positions on the host (copied from the GPU for a GPU input), one per pooled element.
  [[nodiscard]] std::vector<std::int64_t> positions() const {
    if (device.is_cpu()) return index ? *index : std::vector<std::int64_t>{};
#if GKD_DETAIL_CUDA_LINKED
    std::vector<std::int64_t> host(static_cast<std::size_t>(numel(pooled_shape)));
    if (!host.empty()) cuda::copy_bytes(host.data(), kCPU, device_index.get(), device, host.size() * sizeof(std::int64_t));
    return host;
#else
    gkd::detail::cuda_not_linked("PoolIndices", device);
#endif
  }
};

/// Positions of the maxima of max_pool2d(x, kernel) (stride = kernel, no padding), on x's device.
template <Real T>
PoolIndices max_pool2d_indices(const Tensor<T>& x, Size2 kernel) {
  constexpr std::string_view op = "max_pool2d_indices";
  GKD_CHECK(x.defined(), op, "input is an undefined tensor");
  GKD_CHECK(x.dim() == 4, op, "input must be 4-D, got " << to_string(x.shape()));
  GKD_CHECK(kernel.h > 0 && kernel.w > 0 && x.shape()[2] >= kernel.h && x.shape()[3] >= kernel.w, op,
            "kernel " << kernel << " does not fit input " << to_string(x.shape()));
  const std::int64_t planes = x.shape()[0] * x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const std::int64_t oh = H / kernel.h, ow = W / kernel.w;
  const Shape pooled{x.shape()[0], x.shape()[1], oh, ow};
  if (x.device().is_cuda()) {
#if GKD_DETAIL_CUDA_LINKED
    return {x.shape(), pooled, nullptr, x.device(), cuda::max_pool2d_indices(x, kernel.h, kernel.w)};
#else
    gkd::detail::cuda_not_linked(op, x.device());
#endif
  }
  const Tensor<T> xc = x.contiguous_copy_if_needed();
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
  return {x.shape(), pooled, index, kCPU, nullptr};
}

/// Scatters x (the pooled shape) into zeros of the pooled input's shape at the remembered positions.
/// Differentiable in x: the gradient gathers from the same positions. x must be on the device the
/// indices were computed on.
template <Real T>
Tensor<T> max_unpool2d(const Tensor<T>& x, const PoolIndices& where) {
  constexpr std::string_view op = "max_unpool2d";
  GKD_CHECK(x.defined(), op, "input is an undefined tensor");
  GKD_CHECK(where.pooled_shape.size() == 4 && where.input_shape.size() == 4, op,
            "the indices hold no pooling (pooled shape " << to_string(where.pooled_shape)
                                                         << "); make them with max_pool2d_indices");
  GKD_CHECK(x.shape() == where.pooled_shape, op,
            "input " << to_string(x.shape()) << " does not match the pooled shape " << to_string(where.pooled_shape)
                     << " of the indices");
  GKD_CHECK(x.device() == where.device, op,
            "input on " << x.device().str() << " but the indices on " << where.device.str()
                        << "; compute the indices on the input's device");
  if (x.device().is_cuda()) {
#if GKD_DETAIL_CUDA_LINKED
    return cuda::max_unpool2d(x, where.device_index, where.input_shape);
#else
    gkd::detail::cuda_not_linked(op, x.device());
#endif
  }
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
