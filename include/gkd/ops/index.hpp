// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Integer-indexed ops: `one_hot` (segmentation labels to channel masks), `index_select` and
/// `gather` (PyTorch semantics, differentiable w.r.t. the data tensor).
///
/// Indices and labels are stored as tensors of T holding integer values (what `randint` and
/// `argmax` produce, and what label maps loaded as float hold); every index is validated to be a
/// finite integer in range before use. `index_select` also accepts a `std::vector<std::int64_t>`.
/// All three run on GPU tensors too (gkd/cuda/index.hpp when the program links `gkd::cuda`); the data
/// and an index tensor must then share the device.
/// Example:
/// @code
///   auto masks = gkd::one_hot(labels, 4);            // [N, H, W] labels in 0..3 -> [N, 4, H, W] of 0/1
///   auto rows  = gkd::index_select(x, 0, {2, 0});     // rows 2 and 0 of x
///   auto picked = gkd::gather(logp, 1, target.unsqueeze(1));   // [N, C] -> [N, 1]
/// @endcode
#include <cmath>
#include <memory>
#include <string_view>
#include <vector>

#include "gkd/ops/elementwise.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/index.hpp"
#endif

namespace gkd {

namespace detail {

/// The values of `t` (row-major, read through a host copy when on a GPU) as int64; throws naming `op`
/// when one is not a finite integer.
template <Real T>
std::vector<std::int64_t> integer_values(const Tensor<T>& t, std::string_view op, std::string_view what) {
  const Tensor<T> c = t.cpu().contiguous_copy_if_needed();
  std::vector<std::int64_t> out(static_cast<std::size_t>(c.numel()));
  for (std::int64_t i = 0; i < c.numel(); ++i) {
    const T v = c.data()[i];
    GKD_CHECK(std::isfinite(v) && v == std::trunc(v) && std::abs(v) < T(9.0e15), op,
              what << " of shape " << to_string(t.shape()) << " holds the non-integer value " << v
                   << " at flat index " << i);
    out[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(v);
  }
  return out;
}

/// Throws naming `op` unless every index lies in [0, n).
inline void check_index_range(const std::vector<std::int64_t>& idx, std::int64_t n, std::string_view op,
                              std::string_view what, const Shape& shape, const Shape& data_shape) {
  for (std::size_t i = 0; i < idx.size(); ++i)
    GKD_CHECK(idx[i] >= 0 && idx[i] < n, op,
              what << " of shape " << to_string(shape) << " holds " << idx[i] << " at flat index " << i
                   << ", outside [0, " << n << ") for data of shape " << to_string(data_shape));
}

template <Real T>
Tensor<T> index_select_impl(const Tensor<T>& x, std::int64_t dim, std::vector<std::int64_t> idx,
                            const Shape& index_shape) {
  GKD_CHECK(x.dim() > 0, "index_select", "cannot index a 0-d tensor (shape [])");
  const std::size_t d = normalize_dim(dim, x.dim(), "index_select");
  const std::int64_t n = x.shape()[d];
  check_index_range(idx, n, "index_select", "index", index_shape, x.shape());
  std::int64_t outer = 1, inner = 1;
  for (std::size_t k = 0; k < d; ++k) outer *= x.shape()[k];
  for (std::size_t k = d + 1; k < x.dim(); ++k) inner *= x.shape()[k];
  const auto count = static_cast<std::int64_t>(idx.size());
  Shape out_shape = x.shape();
  out_shape[d] = count;
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(out_shape);
  const T* src = xc.data();
  T* dst = y.data();
#pragma omp parallel for if (y.numel() > kParallelGrain && outer > 1)
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t k = 0; k < count; ++k)
      std::copy_n(src + (o * n + idx[static_cast<std::size_t>(k)]) * inner, inner, dst + (o * count + k) * inner);
  auto shared = std::make_shared<const std::vector<std::int64_t>>(std::move(idx));
  return record("index_select", y, {x}, [shared, shape = x.shape(), outer, inner, n, count](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::zeros(shape);
    const T* gp = gc.data();
    T* dp = dx.data();
    const auto& ix = *shared;
#pragma omp parallel for if (gc.numel() > kParallelGrain && outer > 1)
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t k = 0; k < count; ++k) {
        T* row = dp + (o * n + ix[static_cast<std::size_t>(k)]) * inner;
        const T* grow = gp + (o * count + k) * inner;
        for (std::int64_t i = 0; i < inner; ++i) row[i] += grow[i];
      }
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace detail

/// One-hot encoding of integer labels: inserts a class dim of size `num_classes` at `dim` (of the
/// result) holding 1 where the label equals the class index and 0 elsewhere. `dim` defaults to 1,
/// the channel dim of segmentation maps ([N, H, W] -> [N, C, H, W]; [N] -> [N, C]); pass -1 for
/// PyTorch's F.one_hot layout (class dim last). `num_classes = -1` uses max(label) + 1. Not
/// differentiable (labels are data). Labels on a GPU are validated through a host copy and encoded
/// on their device.
/// @throws gkd::Error for a non-integer or out-of-range label, num_classes == 0 or < -1, or a bad dim
template <Real T>
Tensor<T> one_hot(const Tensor<T>& labels, std::int64_t num_classes, std::int64_t dim = 1) {
  GKD_CHECK(labels.defined(), "one_hot", "labels are an undefined tensor");
  const std::vector<std::int64_t> idx = detail::integer_values(labels, "one_hot", "labels");
  GKD_CHECK(num_classes > 0 || num_classes == -1, "one_hot",
            "num_classes must be positive (or -1 to infer), got " << num_classes << " for labels of shape "
                                                                  << to_string(labels.shape()));
  if (num_classes == -1) {
    GKD_CHECK(!idx.empty(), "one_hot", "cannot infer num_classes from empty labels of shape " << to_string(labels.shape()));
    num_classes = *std::max_element(idx.begin(), idx.end()) + 1;
  }
  detail::check_index_range(idx, num_classes, "one_hot", "labels", labels.shape(), {num_classes});
  const std::size_t d = normalize_dim(dim, labels.dim() + 1, "one_hot");
  Shape out_shape = labels.shape();
  out_shape.insert(out_shape.begin() + static_cast<std::ptrdiff_t>(d), num_classes);
  std::int64_t inner = 1;
  for (std::size_t k = d; k < labels.dim(); ++k) inner *= labels.shape()[k];
  if (labels.device().is_cuda()) {  // labels == [0, 1, ..., num_classes - 1] along the new dim
    Shape classes_shape(out_shape.size(), 1);
    classes_shape[d] = num_classes;
    Tensor<T> classes = Tensor<T>::empty(classes_shape);
    for (std::int64_t c = 0; c < num_classes; ++c) classes.data()[c] = static_cast<T>(c);
    return eq(labels.detach().unsqueeze(static_cast<std::int64_t>(d)), classes.to(labels.device()));
  }
  Tensor<T> y = Tensor<T>::zeros(out_shape);
  T* dst = y.data();
  const auto n = static_cast<std::int64_t>(idx.size());
#pragma omp parallel for if (n > detail::kParallelGrain)
  for (std::int64_t j = 0; j < n; ++j) {
    const std::int64_t o = j / inner, i = j % inner;
    dst[(o * num_classes + idx[static_cast<std::size_t>(j)]) * inner + i] = T(1);
  }
  return y;
}

/// Picks the slices `indices` along `dim` (torch.index_select): the result has x's shape with
/// dim `dim` of size len(indices). `indices` is a 0-d or 1-d tensor of integer values in
/// [0, x.size(dim)) on x's device (GPU indices are validated through one host copy); repeats are
/// allowed (their gradients add up).
/// @throws gkd::Error for a bad dim, an index of rank > 1 or on another device, a non-integer or
///         out-of-range index
template <Real T>
Tensor<T> index_select(const Tensor<T>& x, std::int64_t dim, const Tensor<T>& indices) {
  GKD_CHECK(x.defined() && indices.defined(), "index_select", "data or index is an undefined tensor");
  GKD_CHECK(x.device() == indices.device(), "index_select",
            "data on " << x.device().str() << " but index on " << indices.device().str()
                       << "; both must be on one device");
  GKD_CHECK(indices.dim() <= 1, "index_select",
            "index must be 0-d or 1-d, got shape " << to_string(indices.shape()) << " for data of shape "
                                                   << to_string(x.shape()));
  std::vector<std::int64_t> idx = detail::integer_values(indices, "index_select", "index");
  GKD_CUDA_DISPATCH(x.device(), "index_select", index_select(x, dim, idx, indices.shape()));
  return detail::index_select_impl(x, dim, std::move(idx), indices.shape());
}

/// index_select with the indices given as integers (x on any device).
template <Real T>
Tensor<T> index_select(const Tensor<T>& x, std::int64_t dim, const std::vector<std::int64_t>& indices) {
  GKD_CHECK(x.defined(), "index_select", "input is an undefined tensor");
  const Shape index_shape{static_cast<std::int64_t>(indices.size())};
  GKD_CUDA_DISPATCH(x.device(), "index_select", index_select(x, dim, indices, index_shape));
  return detail::index_select_impl(x, dim, indices, index_shape);
}

namespace detail {

/// Validates gather's operands (ranks, sizes, dim; not the index values) and returns the normalised dim.
template <Real T>
std::size_t gather_dim(const Tensor<T>& x, std::int64_t dim, const Tensor<T>& index) {
  GKD_CHECK(x.defined() && index.defined(), "gather", "data or index is an undefined tensor");
  GKD_CHECK(index.dim() == x.dim(), "gather",
            "index of shape " << to_string(index.shape()) << " must have the rank of the data, shape "
                              << to_string(x.shape()));
  const std::size_t d = normalize_dim(dim, std::max<std::size_t>(x.dim(), 1), "gather");
  for (std::size_t k = 0; k < x.dim(); ++k)
    GKD_CHECK(k == d || index.shape()[k] <= x.shape()[k], "gather",
              "index of shape " << to_string(index.shape()) << " is larger than the data of shape "
                                << to_string(x.shape()) << " in dim " << k);
  return d;
}

/// Throws gather's message for the first bad value of `index` (read through a host copy).
template <Real T>
void check_gather_index(const Tensor<T>& x, std::size_t d, const Tensor<T>& index) {
  const std::vector<std::int64_t> idx = integer_values(index, "gather", "index");
  check_index_range(idx, x.dim() ? x.shape()[d] : 1, "gather", "index", index.shape(), x.shape());
}

}  // namespace detail

/// torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for dim == 1 (likewise for other dims).
/// `index` has x's rank, index.size(d) <= x.size(d) for d != dim, and integer values in
/// [0, x.size(dim)); the result has index's shape. Differentiable w.r.t. x (repeats add up). On a GPU
/// the index (on x's device) is validated on the device.
/// @throws gkd::Error for a rank or size mismatch, a non-integer or out-of-range index, a bad dim, or
///         data and index on different devices
template <Real T>
Tensor<T> gather(const Tensor<T>& x, std::int64_t dim, const Tensor<T>& index) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(x.device(), index.device()), "gather", gather(x, dim, index));
  detail::check_cpu(x, "gather");
  detail::check_cpu(index, "gather");
  const std::size_t d = detail::gather_dim(x, dim, index);
  std::vector<std::int64_t> idx = detail::integer_values(index, "gather", "index");
  const std::int64_t n = x.dim() ? x.shape()[d] : 1;
  detail::check_index_range(idx, n, "gather", "index", index.shape(), x.shape());
  // Walk index's shape over x's layout with the gathered dim's stride zeroed; add idx * stride.
  Strides xs = x.strides();
  const std::int64_t x_step = x.dim() ? xs[d] : 0;
  if (x.dim()) xs[d] = 0;
  Tensor<T> y = Tensor<T>::empty(index.shape());
  {
    const T* src = x.data();
    T* dst = y.data();
    std::int64_t i = 0;
    detail::strided_for_each<1>(index.shape(), {&xs}, [&](const auto& o) {
      dst[i] = src[o[0] + idx[static_cast<std::size_t>(i)] * x_step];
      ++i;
    });
  }
  auto shared = std::make_shared<const std::vector<std::int64_t>>(std::move(idx));
  return record("gather", y, {x}, [shared, shape = x.shape(), index_shape = index.shape(), d](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::zeros(shape);
    Strides ds = dx.strides();
    const std::int64_t step = shape.empty() ? 0 : ds[d];
    if (!shape.empty()) ds[d] = 0;
    const T* gp = gc.data();
    T* dp = dx.data();
    const auto& ix = *shared;
    std::int64_t i = 0;
    detail::strided_for_each<1>(index_shape, {&ds}, [&](const auto& o) {
      dp[o[0] + ix[static_cast<std::size_t>(i)] * step] += gp[i];
      ++i;
    });
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace gkd

GKD_REGISTER_OPS(index, "index_select", "gather")
