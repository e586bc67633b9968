// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Differentiable reductions (sum, mean, max, min, var along dims, with keepdim) and softmax /
/// log_softmax along any dim; argmax (not differentiable).
///
/// Example: `auto m = gkd::mean(x, {2, 3}, true);   // N,C,H,W -> N,C,1,1`
#include <limits>
#include <vector>

#include "gkd/ops/elementwise.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/reduce.hpp"
#endif

namespace gkd {

namespace detail {

/// Shape with the dims of `reduce` set to 1 (keepdim form), and the normalised, deduplicated dims.
inline Shape keepdim_shape(const Shape& shape, const std::vector<std::int64_t>& dims, std::string_view op,
                           std::vector<bool>* reduced = nullptr) {
  Shape out = shape;
  std::vector<bool> mask(shape.size(), dims.empty());
  for (auto d : dims) {
    const std::size_t k = normalize_dim(d, shape.size(), op);
    GKD_CHECK(!mask[k], op, "dim " << d << " given twice");
    mask[k] = true;
  }
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (mask[i]) out[i] = 1;
  if (reduced) *reduced = mask;
  return out;
}

inline Shape drop_reduced(const Shape& keep, const std::vector<bool>& reduced) {
  Shape out;
  for (std::size_t i = 0; i < keep.size(); ++i)
    if (!reduced[i]) out.push_back(keep[i]);
  return out;
}

/// Moves dim `d` last and makes the result contiguous: rows of length shape[d].
template <Real T>
Tensor<T> rows_along(const Tensor<T>& x, std::size_t d) {
  std::vector<std::int64_t> order;
  for (std::size_t i = 0; i < x.dim(); ++i)
    if (i != d) order.push_back(static_cast<std::int64_t>(i));
  order.push_back(static_cast<std::int64_t>(d));
  NoGrad guard;
  return x.permute(order).contiguous_copy_if_needed();
}

/// Inverse of rows_along: a contiguous tensor whose last dim is `d` of `shape`, put back in place.
template <Real T>
Tensor<T> unrows(const Tensor<T>& rows, std::size_t d, std::size_t ndim) {
  std::vector<std::int64_t> order(ndim);
  for (std::size_t i = 0, j = 0; i < ndim; ++i) order[i] = i == d ? static_cast<std::int64_t>(ndim - 1) : static_cast<std::int64_t>(j++);
  NoGrad guard;
  return rows.permute(order).contiguous_copy_if_needed();
}

}  // namespace detail

/// Sum of all elements (0-d result).
template <Real T>
Tensor<T> sum(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "sum", sum(x));
  detail::check_cpu(x, "sum");
  const T* p = x.data();
  double acc = 0;
  if (x.is_contiguous()) {
    // fixed blocks summed in a fixed order: the result does not depend on the thread count
    const std::int64_t n = x.numel(), block = detail::kParallelGrain;
    std::vector<double> partial(static_cast<std::size_t>((n + block - 1) / block), 0.0);
#pragma omp parallel for if (n > block)
    for (std::int64_t b = 0; b < static_cast<std::int64_t>(partial.size()); ++b) {
      double s = 0;
      for (std::int64_t i = b * block; i < std::min(n, (b + 1) * block); ++i) s += p[i];
      partial[static_cast<std::size_t>(b)] = s;
    }
    for (double s : partial) acc += s;
  } else {
    detail::strided_for_each<1>(x.shape(), {&x.strides()}, [&](const auto& o) { acc += p[o[0]]; });
  }
  Tensor<T> y = Tensor<T>::scalar(static_cast<T>(acc));
  return record("sum", y, {x}, [shape = x.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{g.detach().expand(shape)};
  });
}

/// Sum over `dims` (all dims when empty); `keepdim` keeps them with size 1.
template <Real T>
Tensor<T> sum(const Tensor<T>& x, const std::vector<std::int64_t>& dims, bool keepdim = false) {
  GKD_CUDA_DISPATCH(x.device(), "sum", sum(x, dims, keepdim));
  detail::check_cpu(x, "sum");
  std::vector<bool> reduced;
  const Shape keep = detail::keepdim_shape(x.shape(), dims, "sum", &reduced);
  Tensor<T> y = detail::sum_to(x.detach(), keep);
  if (y.storage() == x.storage()) y = detail::owned_copy(y);
  if (!keepdim) y = y.reshape(detail::drop_reduced(keep, reduced));
  return record("sum_dim", y, {x}, [shape = x.shape(), keep](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{g.detach().reshape(keep).expand(shape)};
  });
}

/// Mean of all elements.
template <Real T>
Tensor<T> mean(const Tensor<T>& x) {
  GKD_CHECK(x.numel() > 0, "mean", "mean of an empty tensor of shape " << to_string(x.shape()));
  return mul(sum(x), T(1) / static_cast<T>(x.numel()));
}

/// Mean over `dims` (all when empty).
template <Real T>
Tensor<T> mean(const Tensor<T>& x, const std::vector<std::int64_t>& dims, bool keepdim = false) {
  const Shape keep = detail::keepdim_shape(x.shape(), dims, "mean");
  const std::int64_t count = x.numel() / std::max<std::int64_t>(numel(keep), 1);
  GKD_CHECK(count > 0, "mean", "mean over an empty dim of shape " << to_string(x.shape()));
  return mul(sum(x, dims, keepdim), T(1) / static_cast<T>(count));
}

/// Variance over `dims` with Bessel's `correction` (1 = unbiased, PyTorch's default).
template <Real T>
Tensor<T> var(const Tensor<T>& x, const std::vector<std::int64_t>& dims, bool keepdim = false, int correction = 1) {
  const Shape keep = detail::keepdim_shape(x.shape(), dims, "var");
  const std::int64_t count = x.numel() / std::max<std::int64_t>(numel(keep), 1);
  GKD_CHECK(count - correction > 0, "var",
            "needs more than " << correction << " elements per reduction, got " << count << " for shape "
                               << to_string(x.shape()));
  Tensor<T> centered = sub(x, mean(x, dims, true));
  return mul(sum(mul(centered, centered), dims, keepdim), T(1) / static_cast<T>(count - correction));
}

namespace detail {
/// Max (or min) along dim d: values and flat row indices of the winner (first on ties).
template <Real T, bool IsMax>
Tensor<T> extremum(const Tensor<T>& x, std::int64_t dim, bool keepdim, std::string_view op) {
  check_cpu(x, op);
  const std::size_t d = normalize_dim(dim, x.dim(), op);
  GKD_CHECK(x.shape()[d] > 0, op, "reduction over an empty dim " << d << " of shape " << to_string(x.shape()));
  const Tensor<T> rows = rows_along(x, d);
  const std::int64_t len = x.shape()[d];
  const std::int64_t count = rows.numel() / len;
  Shape keep = x.shape();
  keep[d] = 1;
  Tensor<T> y = Tensor<T>::empty(keep);
  auto index = std::make_shared<std::vector<std::int64_t>>(static_cast<std::size_t>(count));
  for (std::int64_t r = 0; r < count; ++r) {
    const T* row = rows.data() + r * len;
    std::int64_t best = 0;
    for (std::int64_t i = 1; i < len; ++i)
      if (IsMax ? row[i] > row[best] : row[i] < row[best]) best = i;
    y.data()[r] = row[best];  // keepdim layout equals the rows' order with dim d last
    (*index)[static_cast<std::size_t>(r)] = best;
  }
  // y's elements are in "other dims" order, which is also keepdim order since dim d has size 1.
  if (!keepdim) y = y.reshape([&] { Shape s = keep; s.erase(s.begin() + static_cast<std::ptrdiff_t>(d)); return s; }());
  return record(op, y, {x}, [index, shape = x.shape(), keep, d, len](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Shape rows_shape = keep;
    rows_shape.erase(rows_shape.begin() + static_cast<std::ptrdiff_t>(d));
    rows_shape.push_back(len);
    Tensor<T> grows = Tensor<T>::zeros(rows_shape);
    for (std::size_t r = 0; r < index->size(); ++r)
      grows.data()[static_cast<std::int64_t>(r) * len + (*index)[r]] = gc.data()[r];
    return std::vector<Tensor<T>>{unrows(grows, d, shape.size())};
  });
}
}  // namespace detail

/// Maximum along `dim`; the gradient goes to the first maximal element (PyTorch's max(dim)).
template <Real T>
Tensor<T> max(const Tensor<T>& x, std::int64_t dim, bool keepdim = false) {
  GKD_CUDA_DISPATCH(x.device(), "max", max(x, dim, keepdim));
  return detail::extremum<T, true>(x, dim, keepdim, "max");
}
/// Minimum along `dim`; the gradient goes to the first minimal element.
template <Real T>
Tensor<T> min(const Tensor<T>& x, std::int64_t dim, bool keepdim = false) {
  GKD_CUDA_DISPATCH(x.device(), "min", min(x, dim, keepdim));
  return detail::extremum<T, false>(x, dim, keepdim, "min");
}
/// Maximum of all elements.
template <Real T>
Tensor<T> max(const Tensor<T>& x) {
  return max(x.reshape({-1}), 0);
}
/// Minimum of all elements.
template <Real T>
Tensor<T> min(const Tensor<T>& x) {
  return min(x.reshape({-1}), 0);
}

/// Index of the maximum along `dim` (as values of T; not differentiable).
template <Real T>
Tensor<T> argmax(const Tensor<T>& x, std::int64_t dim, bool keepdim = false) {
  GKD_CUDA_DISPATCH(x.device(), "argmax", argmax(x, dim, keepdim));
  detail::check_cpu(x, "argmax");
  const std::size_t d = normalize_dim(dim, x.dim(), "argmax");
  const Tensor<T> rows = detail::rows_along(x, d);
  const std::int64_t len = x.shape()[d];
  GKD_CHECK(len > 0, "argmax", "empty dim " << d << " of shape " << to_string(x.shape()));
  Shape keep = x.shape();
  keep[d] = 1;
  Tensor<T> y = Tensor<T>::empty(keep);
  for (std::int64_t r = 0; r < y.numel(); ++r) {
    const T* row = rows.data() + r * len;
    y.data()[r] = static_cast<T>(std::max_element(row, row + len) - row);
  }
  if (!keepdim) y = y.squeeze(static_cast<std::int64_t>(d)).contiguous_copy_if_needed();
  return y;
}

namespace detail {
template <Real T, bool Log>
Tensor<T> softmax_impl(const Tensor<T>& x, std::int64_t dim, std::string_view op) {
  check_cpu(x, op);
  const std::size_t d = normalize_dim(dim, x.dim(), op);
  const Tensor<T> rows = rows_along(x, d);
  const std::int64_t len = x.dim() ? x.shape()[d] : 1;
  const std::int64_t count = len ? rows.numel() / len : 0;
  Tensor<T> out = Tensor<T>::empty(rows.shape());
#pragma omp parallel for if (rows.numel() > kParallelGrain)
  for (std::int64_t r = 0; r < count; ++r) {
    const T* in = rows.data() + r * len;
    T* o = out.data() + r * len;
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t i = 0; i < len; ++i) m = std::max(m, in[i]);
    T s = 0;
    for (std::int64_t i = 0; i < len; ++i) s += std::exp(in[i] - m);
    if constexpr (Log) {
      const T lse = m + std::log(s);
      for (std::int64_t i = 0; i < len; ++i) o[i] = in[i] - lse;
    } else {
      for (std::int64_t i = 0; i < len; ++i) o[i] = std::exp(in[i] - m) / s;
    }
  }
  Tensor<T> y = unrows(out, d, x.dim());
  return record(op, y, {x}, [out, d, len, count, ndim = x.dim()](const Tensor<T>& g) {
    const Tensor<T> grows = rows_along(g, d);
    Tensor<T> dx = Tensor<T>::empty(grows.shape());
    for (std::int64_t r = 0; r < count; ++r) {
      const T* gy = grows.data() + r * len;
      const T* y = out.data() + r * len;
      T* gx = dx.data() + r * len;
      T dot = 0;
      if constexpr (Log) {
        for (std::int64_t i = 0; i < len; ++i) dot += gy[i];
        for (std::int64_t i = 0; i < len; ++i) gx[i] = gy[i] - std::exp(y[i]) * dot;
      } else {
        for (std::int64_t i = 0; i < len; ++i) dot += gy[i] * y[i];
        for (std::int64_t i = 0; i < len; ++i) gx[i] = y[i] * (gy[i] - dot);
      }
    }
    return std::vector<Tensor<T>>{unrows(dx, d, ndim)};
  });
}
}  // namespace detail

/// Softmax along `dim`, computed stably (max subtracted).
template <Real T>
Tensor<T> softmax(const Tensor<T>& x, std::int64_t dim) {
  GKD_CUDA_DISPATCH(x.device(), "softmax", softmax(x, dim));
  return detail::softmax_impl<T, false>(x, dim, "softmax");
}
/// log(softmax(x)) along `dim`, computed as x - logsumexp(x).
template <Real T>
Tensor<T> log_softmax(const Tensor<T>& x, std::int64_t dim) {
  GKD_CUDA_DISPATCH(x.device(), "log_softmax", log_softmax(x, dim));
  return detail::softmax_impl<T, true>(x, dim, "log_softmax");
}

}  // namespace gkd

GKD_REGISTER_OPS(reduce, "sum", "sum_dim", "max", "min", "softmax", "log_softmax")
