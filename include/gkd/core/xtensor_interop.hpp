// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Zero-copy bridges between gkd tensors and xtensor. `as_xtensor` adapts a tensor's memory (any
/// strides) without copying; `from_xtensor` copies an xtensor container into a new tensor.
///
/// Keep xtensor at the interop boundary: assign expressions to explicit containers
/// (`xt::xarray<float> y = ...;`), never `auto` or `xt::eval` of view expressions (pitfalls.md #2,
/// an xtensor 0.24 bug under C++20).
/// @code
///   auto t = gkd::Tensor<double>::ones({2, 3});
///   auto a = gkd::as_xtensor(t);            // adaptor over t's memory
///   xt::xarray<double> doubled = a * 2.0;   // explicit container
///   auto back = gkd::from_xtensor(doubled);
/// @endcode
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>

#include "gkd/core/tensor.hpp"

namespace gkd {

/// An xtensor adaptor over the tensor's elements (same memory, the tensor's shape and strides).
/// The tensor must outlive the adaptor.
template <Real T>
auto as_xtensor(const Tensor<T>& t) {
  GKD_CHECK(t.defined() && t.device() == kCPU, "as_xtensor", "needs a defined host tensor");
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  std::vector<std::ptrdiff_t> strides(t.strides().begin(), t.strides().end());
  std::size_t extent = t.numel() > 0 ? 1 : 0;
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (shape[i] > 0) extent += (shape[i] - 1) * static_cast<std::size_t>(strides[i]);
  return xt::adapt(t.data(), extent, xt::no_ownership(), shape, strides);
}

/// A contiguous tensor copied from an xtensor container or expression result.
template <class E>
Tensor<typename E::value_type> from_xtensor(const xt::xexpression<E>& expression) {
  using T = typename E::value_type;
  const xt::xarray<T> values = expression.derived_cast();
  Tensor<T> t = Tensor<T>::empty(Shape(values.shape().begin(), values.shape().end()));
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

}  // namespace gkd
