// SPDX-License-Identifier: Apache-2.0
// CUDA index_select and gather with autograd (include/gkd/cuda/index.hpp); kernels in index_kernels.cu.
#include "gkd/cuda/index.hpp"

#include <string_view>

#include "gkd/ops/index.hpp"
#include "ops/device_array.hpp"
#include "ops/index_kernels.hpp"

namespace gkd::cuda {

template <Real T>
Tensor<T> index_select(const Tensor<T>& x, std::int64_t dim, const std::vector<std::int64_t>& indices,
                       const Shape& index_shape) {
  constexpr std::string_view op = "index_select";
  GKD_CHECK(x.defined(), op, "input is an undefined tensor");
  GKD_CHECK(x.device().is_cuda(), op, "expected a CUDA tensor, got one on " << x.device().str());
  GKD_CHECK(x.dim() > 0, op, "cannot index a 0-d tensor (shape [])");
  const std::size_t d = normalize_dim(dim, x.dim(), op);
  const std::int64_t n = x.shape()[d];
  detail::check_index_range(indices, n, op, "index", index_shape, x.shape());
  std::int64_t outer = 1, inner = 1;
  for (std::size_t k = 0; k < d; ++k) outer *= x.shape()[k];
  for (std::size_t k = d + 1; k < x.dim(); ++k) inner *= x.shape()[k];
  const auto count = static_cast<std::int64_t>(indices.size());
  // One upload: the indices, then for the backward each data row's positions in increasing order
  // (offsets [n + 1] into order [count], a counting sort of the indices).
  std::vector<std::int64_t> table(static_cast<std::size_t>(count + n + 1 + count), 0);
  std::int64_t* offsets = table.data() + count;
  std::int64_t* order = offsets + n + 1;
  for (std::int64_t k = 0; k < count; ++k) {
    table[static_cast<std::size_t>(k)] = indices[static_cast<std::size_t>(k)];
    ++offsets[indices[static_cast<std::size_t>(k)] + 1];
  }
  for (std::int64_t r = 0; r < n; ++r) offsets[r + 1] += offsets[r];
  {
    std::vector<std::int64_t> next(offsets, offsets + n);
    for (std::int64_t k = 0; k < count; ++k) order[next[static_cast<std::size_t>(indices[static_cast<std::size_t>(k)])]++] = k;
  }
  const DeviceArray<std::int64_t> device_table(table, x.device());
  Shape out_shape = x.shape();
  out_shape[d] = count;
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(out_shape, x.device());
  launch_index_select(xc.data(), device_table.data(), y.data(), outer, n, count, inner);
  return record("index_select", y, {x}, [device_table, shape = x.shape(), outer, n, count, inner](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape, gc.device());
    const std::int64_t* offs = device_table.data() + count;
    launch_index_select_backward(gc.data(), offs, offs + n + 1, dx.data(), outer, n, count, inner);
    return std::vector<Tensor<T>>{dx};
  });
}

template <Real T>
Tensor<T> gather(const Tensor<T>& x, std::int64_t dim, const Tensor<T>& index) {
  constexpr std::string_view op = "gather";
  const std::size_t d = detail::gather_dim(x, dim, index);
  GKD_CHECK(x.device().is_cuda() && index.device() == x.device(), op,
            "data on " << x.device().str() << " but index on " << index.device().str()
                       << "; both must be on one CUDA device");
  if (x.dim() == 0) return cuda::gather(x.reshape({1}), 0, index.reshape({1})).reshape({});
  GKD_CHECK(x.dim() <= static_cast<std::size_t>(kMaxRank), op,
            "tensors of rank " << x.dim() << " exceed the CUDA limit of " << kMaxRank);
  const Tensor<T> values = index.contiguous_copy_if_needed();
  const DeviceArray<std::int64_t> idx(values.numel(), x.device());
  const DeviceArray<unsigned long long> first_bad(1, x.device());
  if (launch_indices_from_values(values.data(), values.numel(), x.shape()[d], idx.data(), first_bad.data()) >= 0) {
    detail::check_gather_index(x, d, index);  // throws the CPU op's message
    GKD_FAIL(op, "index of shape " << to_string(index.shape()) << " holds a value that is not in [0, "
                                   << x.shape()[d] << ") (found on the GPU)");
  }
  GatherLayout layout;
  layout.rank = static_cast<int>(x.dim());
  layout.dim = static_cast<int>(d);
  for (std::size_t k = 0; k < x.dim(); ++k) {
    layout.x_shape[k] = x.shape()[k];
    layout.index_shape[k] = index.shape()[k];
  }
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(index.shape(), x.device());
  launch_gather(xc.data(), idx.data(), y.data(), layout);
  return record("gather", y, {x}, [idx, layout, shape = x.shape()](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape, gc.device());
    launch_gather_backward(gc.data(), idx.data(), dx.data(), layout);
    return std::vector<Tensor<T>>{dx};
  });
}

#define GKD_INDEX_OPS(T)                                                                                     \
  template Tensor<T> index_select<T>(const Tensor<T>&, std::int64_t, const std::vector<std::int64_t>&, \
                                     const Shape&);                                                     \
  template Tensor<T> gather<T>(const Tensor<T>&, std::int64_t, const Tensor<T>&);
GKD_INDEX_OPS(float)
GKD_INDEX_OPS(double)
#undef GKD_INDEX_OPS

}  // namespace gkd::cuda
