// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Joining and splitting tensors along a dim: `concat` (torch.cat), `stack`, `split` and `chunk`.
///
/// `concat` and `stack` copy into a new contiguous tensor and are differentiable w.r.t. every input.
/// `split` and `chunk` return narrow views sharing storage with the input (like PyTorch), so
/// gradients flow through the ordinary `slice` view op, on the host and on a GPU alike. Example (U-Net
/// skip connection):
/// @code
///   auto y = gkd::concat({up, skip}, 1);          // [N, C1, H, W] + [N, C2, H, W] -> [N, C1 + C2, H, W]
///   auto parts = gkd::split(y, {c1, c2}, 1);      // back to the two blocks (views)
///   auto s = gkd::stack({a, b, c}, 0);            // three [H, W] maps -> [3, H, W]
/// @endcode
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "gkd/ops/elementwise.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/join.hpp"
#endif

namespace gkd {

namespace detail {

/// Copies `outer` rows of `len` elements: row o of `src` (stride `src_row`) goes to `dst` at
/// o * dst_row + dst_off. Both buffers are contiguous.
template <Real T>
void copy_rows(T* dst, std::int64_t dst_row, std::int64_t dst_off, const T* src, std::int64_t src_row,
               std::int64_t outer, std::int64_t len) {
  if (len == 0) return;
#pragma omp parallel for if (outer * len > kParallelGrain && outer > 1)
  for (std::int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + o * dst_row + dst_off, src + o * src_row, static_cast<std::size_t>(len) * sizeof(T));
}

/// The device a join runs on: the first GPU among the inputs, else the host.
template <Real T>
Device join_device(const std::vector<Tensor<T>>& tensors) {
  for (const auto& t : tensors)
    if (t.defined() && t.device().is_cuda()) return t.device();
  return kCPU;
}

/// The shape of concat(tensors, dim) and the normalised dim, validating ranks and sizes (host and GPU).
template <Real T>
std::pair<Shape, std::size_t> concat_shape(const std::vector<Tensor<T>>& tensors, std::int64_t dim) {
  const Shape& first = tensors[0].shape();
  GKD_CHECK(!first.empty(), "concat", "cannot concatenate 0-d tensors (shape [])");
  const std::size_t d = normalize_dim(dim, first.size(), "concat");
  Shape out_shape = first;
  out_shape[d] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Shape& s = tensors[i].shape();
    bool ok = s.size() == first.size();
    for (std::size_t k = 0; ok && k < s.size(); ++k) ok = k == d || s[k] == first[k];
    GKD_CHECK(ok, "concat",
              "tensor " << i << " has shape " << to_string(s) << " but tensor 0 has shape " << to_string(first)
                        << "; all sizes except dim " << d << " must match");
    out_shape[d] += s[d];
  }
  return {out_shape, d};
}

inline std::int64_t prod(const Shape& s, std::size_t begin, std::size_t end) {
  std::int64_t n = 1;
  for (std::size_t i = begin; i < end; ++i) n *= s[i];
  return n;
}

}  // namespace detail

/// Concatenates tensors along `dim` (torch.cat): all must have the same rank and equal sizes in
/// every other dim.
/// @throws gkd::Error on an empty list, 0-d tensors, rank or size mismatch, or a bad dim
template <Real T>
Tensor<T> concat(const std::vector<Tensor<T>>& tensors, std::int64_t dim = 0) {
  GKD_CHECK(!tensors.empty(), "concat", "needs at least one tensor, got an empty list");
  GKD_CUDA_DISPATCH(detail::join_device(tensors), "concat", concat(tensors, dim));
  for (const auto& t : tensors) detail::check_cpu(t, "concat");
  const auto [out_shape, concat_dim] = detail::concat_shape(tensors, dim);
  const std::size_t d = concat_dim;  // a plain variable: lambdas capture it on every C++20 compiler
  const std::int64_t outer = detail::prod(out_shape, 0, d), inner = detail::prod(out_shape, d + 1, out_shape.size());
  const std::int64_t out_row = out_shape[d] * inner;
  Tensor<T> out = Tensor<T>::empty(out_shape);
  std::vector<std::int64_t> starts;
  std::int64_t offset = 0;
  for (const auto& t : tensors) {
    const Tensor<T> c = t.contiguous_copy_if_needed();
    const std::int64_t len = t.shape()[d] * inner;
    detail::copy_rows(out.data(), out_row, offset * inner, c.data(), len, outer, len);
    starts.push_back(offset);
    offset += t.shape()[d];
  }
  std::vector<bool> wanted;
  for (const auto& t : tensors) wanted.push_back(needs_grad(t));
  std::vector<Shape> shapes;
  for (const auto& t : tensors) shapes.push_back(t.shape());
  return record<T>(
      "concat", out, tensors, [shapes, starts, wanted, d, outer, inner, out_row](const Tensor<T>& g) {
        const Tensor<T> gc = g.contiguous_copy_if_needed();
        std::vector<Tensor<T>> grads(shapes.size());
        for (std::size_t i = 0; i < shapes.size(); ++i) {
          if (!wanted[i]) continue;
          grads[i] = Tensor<T>::empty(shapes[i]);
          const std::int64_t len = shapes[i][d] * inner;
          detail::copy_rows(grads[i].data(), len, 0, gc.data() + starts[i] * inner, out_row, outer, len);
        }
        return grads;
      });
}

/// `concat({a, b}, 1)`: a braced list of tensors.
template <Real T>
Tensor<T> concat(std::initializer_list<Tensor<T>> tensors, std::int64_t dim = 0) {
  return concat(std::vector<Tensor<T>>(tensors), dim);
}

/// Stacks equally shaped tensors along a new dim `dim` (in [-(rank + 1), rank]).
/// @throws gkd::Error on an empty list, a shape mismatch or a bad dim
template <Real T>
Tensor<T> stack(const std::vector<Tensor<T>>& tensors, std::int64_t dim = 0) {
  GKD_CHECK(!tensors.empty(), "stack", "needs at least one tensor, got an empty list");
  GKD_CUDA_DISPATCH(detail::join_device(tensors), "stack", stack(tensors, dim));
  for (const auto& t : tensors) detail::check_cpu(t, "stack");
  const Shape& shape = tensors[0].shape();
  for (std::size_t i = 1; i < tensors.size(); ++i)
    GKD_CHECK(tensors[i].shape() == shape, "stack",
              "tensor " << i << " has shape " << to_string(tensors[i].shape()) << " but tensor 0 has shape "
                        << to_string(shape) << "; all must be equal");
  const std::size_t d = normalize_dim(dim, shape.size() + 1, "stack");
  const auto count = static_cast<std::int64_t>(tensors.size());
  Shape out_shape = shape;
  out_shape.insert(out_shape.begin() + static_cast<std::ptrdiff_t>(d), count);
  const std::int64_t outer = detail::prod(shape, 0, d), inner = detail::prod(shape, d, shape.size());
  Tensor<T> out = Tensor<T>::empty(out_shape);
  for (std::int64_t i = 0; i < count; ++i) {
    const Tensor<T> c = tensors[static_cast<std::size_t>(i)].contiguous_copy_if_needed();
    detail::copy_rows(out.data(), count * inner, i * inner, c.data(), inner, outer, inner);
  }
  std::vector<bool> wanted;
  for (const auto& t : tensors) wanted.push_back(needs_grad(t));
  return record<T>("stack", out, tensors, [shape, wanted, outer, inner, count](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    std::vector<Tensor<T>> grads(wanted.size());
    for (std::int64_t i = 0; i < count; ++i) {
      if (!wanted[static_cast<std::size_t>(i)]) continue;
      Tensor<T> gi = Tensor<T>::empty(shape);
      detail::copy_rows(gi.data(), inner, 0, gc.data() + i * inner, count * inner, outer, inner);
      grads[static_cast<std::size_t>(i)] = gi;
    }
    return grads;
  });
}

/// `stack({a, b}, 0)`: a braced list of tensors.
template <Real T>
Tensor<T> stack(std::initializer_list<Tensor<T>> tensors, std::int64_t dim = 0) {
  return stack(std::vector<Tensor<T>>(tensors), dim);
}

/// Splits `x` along `dim` into views of the given sizes, which must sum to x.size(dim)
/// (torch.split with a list). Note: a one-element braced list `{n}` selects the chunk-size
/// overload below; pass `std::vector<std::int64_t>{n}` for a single part.
/// @throws gkd::Error when a size is negative or the sizes do not add up
template <Real T>
std::vector<Tensor<T>> split(const Tensor<T>& x, const std::vector<std::int64_t>& sizes, std::int64_t dim = 0) {
  GKD_CHECK(x.defined(), "split", "input is an undefined tensor");
  GKD_CHECK(x.dim() > 0, "split", "cannot split a 0-d tensor (shape [])");
  const std::size_t d = normalize_dim(dim, x.dim(), "split");
  std::int64_t total = 0;
  for (auto s : sizes) {
    GKD_CHECK(s >= 0, "split", "negative part size " << s << " for shape " << to_string(x.shape()));
    total += s;
  }
  GKD_CHECK(total == x.shape()[d], "split",
            "part sizes add up to " << total << " but dim " << d << " of shape " << to_string(x.shape()) << " has "
                                    << x.shape()[d]);
  std::vector<Tensor<T>> parts;
  std::int64_t start = 0;
  for (auto s : sizes) {
    parts.push_back(x.narrow(static_cast<std::int64_t>(d), start, s));
    start += s;
  }
  return parts;
}

/// Splits `x` along `dim` into views of `split_size` elements each, the last possibly smaller
/// (torch.split with an int). An empty dim gives one empty part.
/// @throws gkd::Error when split_size <= 0
template <Real T>
std::vector<Tensor<T>> split(const Tensor<T>& x, std::int64_t split_size, std::int64_t dim = 0) {
  GKD_CHECK(x.defined(), "split", "input is an undefined tensor");
  GKD_CHECK(x.dim() > 0, "split", "cannot split a 0-d tensor (shape [])");
  const std::size_t d = normalize_dim(dim, x.dim(), "split");
  GKD_CHECK(split_size > 0, "split", "split size must be positive, got " << split_size << " for shape "
                                                                             << to_string(x.shape()));
  const std::int64_t n = x.shape()[d];
  std::vector<std::int64_t> sizes;
  for (std::int64_t start = 0; start < n; start += split_size) sizes.push_back(std::min(split_size, n - start));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

/// Splits `x` along `dim` into at most `chunks` views of ceil(size / chunks) elements
/// (torch.chunk: may return fewer parts).
/// @throws gkd::Error when chunks <= 0
template <Real T>
std::vector<Tensor<T>> chunk(const Tensor<T>& x, std::int64_t chunks, std::int64_t dim = 0) {
  GKD_CHECK(chunks > 0, "chunk", "number of chunks must be positive, got " << chunks << " for shape "
                                                                            << to_string(x.shape()));
  GKD_CHECK(x.defined(), "chunk", "input is an undefined tensor");
  GKD_CHECK(x.dim() > 0, "chunk", "cannot chunk a 0-d tensor (shape [])");
  const std::int64_t n = x.shape()[normalize_dim(dim, x.dim(), "chunk")];
  return split(x, std::max<std::int64_t>((n + chunks - 1) / chunks, 1), dim);
}

}  // namespace gkd

GKD_REGISTER_OPS(join, "concat", "stack")
