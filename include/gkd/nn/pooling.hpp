// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Pooling and resampling modules without tensors: `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`,
/// `Upsample` (nearest to a size or bilinear by a scale, PyTorch's `align_corners=False` rule).
/// @code
///   gkd::nn::MaxPool2d<float> pool({.kernel = 2});
///   gkd::nn::Upsample<float> up({.scale = 2.0, .bilinear = true});
///   auto y = up.forward(pool.forward(x));
/// @endcode
#include <optional>

#include "gkd/nn/module.hpp"
#include "gkd/ops/pool.hpp"
#include "gkd/ops/upsample.hpp"

namespace gkd::nn {

struct PoolSpec {
  Size2 kernel = 2;
  std::optional<Size2> stride{};  ///< the kernel size when absent
  Size2 padding = 0;
};

template <Real T>
struct MaxPool2d {
  using value_type = T;
  PoolSpec spec;
  Tensor<T> forward(const Tensor<T>& x) const {
    return max_pool2d(x, spec.kernel, spec.stride.value_or(spec.kernel), spec.padding);
  }
  template <class V>
  void visit(V&) {}
};

template <Real T>
struct AvgPool2d {
  using value_type = T;
  PoolSpec spec;
  Tensor<T> forward(const Tensor<T>& x) const {
    return avg_pool2d(x, spec.kernel, spec.stride.value_or(spec.kernel), spec.padding);
  }
  template <class V>
  void visit(V&) {}
};

template <Real T>
struct AdaptiveAvgPool2d {
  using value_type = T;
  Size2 output_size = 1;
  Tensor<T> forward(const Tensor<T>& x) const { return adaptive_avg_pool2d(x, output_size); }
  template <class V>
  void visit(V&) {}
};

struct UpsampleSpec {
  std::optional<Size2> size{};  ///< target (H, W); else `scale`
  double scale = 2.0;
  bool bilinear = false;
  bool align_corners = false;
};

template <Real T>
struct Upsample {
  using value_type = T;
  UpsampleSpec spec;
  Tensor<T> forward(const Tensor<T>& x) const {
    if (spec.size) return spec.bilinear ? upsample_bilinear2d(x, *spec.size, spec.align_corners)
                                        : upsample_nearest2d(x, *spec.size);
    return spec.bilinear ? upsample_bilinear2d(x, Scale2(spec.scale), spec.align_corners)
                         : upsample_nearest2d(x, Scale2(spec.scale));
  }
  template <class V>
  void visit(V&) {}
};

}  // namespace gkd::nn
