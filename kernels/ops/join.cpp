// SPDX-License-Identifier: Apache-2.0
// CUDA concat and stack with autograd, built on the strided copy primitive (no kernels of their own).
#include "gkd/cuda/join.hpp"

#include <string_view>

#include "gkd/ops/join.hpp"

namespace gkd::cuda {
namespace {

template <Real T>
void check_same_cuda_device(const std::vector<Tensor<T>>& tensors, std::string_view op) {
  GKD_CHECK(!tensors.empty(), op, "needs at least one tensor, got an empty list");
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    GKD_CHECK(tensors[i].defined(), op, "tensor " << i << " is undefined");
    GKD_CHECK(tensors[i].device().is_cuda() && tensors[i].device() == tensors[0].device(), op,
              "tensor " << i << " is on " << tensors[i].device().str() << " but tensor 0 is on "
                        << tensors[0].device().str() << "; all must be on one CUDA device");
  }
}

template <Real T>
std::vector<bool> wanted_grads(const std::vector<Tensor<T>>& tensors) {
  std::vector<bool> wanted;
  for (const auto& t : tensors) wanted.push_back(needs_grad(t));
  return wanted;
}

}  // namespace

template <Real T>
Tensor<T> concat(const std::vector<Tensor<T>>& tensors, std::int64_t dim) {
  check_same_cuda_device(tensors, "concat");
  const auto [out_shape, d] = gkd::detail::concat_shape(tensors, dim);
  const auto k = static_cast<std::int64_t>(d);
  Tensor<T> out = Tensor<T>::empty(out_shape, tensors[0].device());
  std::vector<std::int64_t> starts;
  std::vector<Shape> shapes;
  std::int64_t start = 0;
  for (const auto& t : tensors) {
    detail::copy_into(out.narrow(k, start, t.shape()[d]), t.detach());
    starts.push_back(start);
    shapes.push_back(t.shape());
    start += t.shape()[d];
  }
  return record<T>("concat", out, tensors, [shapes, starts, wanted = wanted_grads(tensors), k](const Tensor<T>& g) {
    std::vector<Tensor<T>> grads(shapes.size());
    for (std::size_t i = 0; i < shapes.size(); ++i)
      if (wanted[i])
        grads[i] = detail::owned_copy(g.detach().narrow(k, starts[i], shapes[i][static_cast<std::size_t>(k)]));
    return grads;
  });
}

template <Real T>
Tensor<T> stack(const std::vector<Tensor<T>>& tensors, std::int64_t dim) {
  check_same_cuda_device(tensors, "stack");
  const Shape& shape = tensors[0].shape();
  for (std::size_t i = 1; i < tensors.size(); ++i)
    GKD_CHECK(tensors[i].shape() == shape, "stack",
              "tensor " << i << " has shape " << to_string(tensors[i].shape()) << " but tensor 0 has shape "
                        << to_string(shape) << "; all must be equal");
  const auto k = static_cast<std::int64_t>(normalize_dim(dim, shape.size() + 1, "stack"));
  const auto count = static_cast<std::int64_t>(tensors.size());
  Shape out_shape = shape;
  out_shape.insert(out_shape.begin() + k, count);
  Tensor<T> out = Tensor<T>::empty(out_shape, tensors[0].device());
  for (std::int64_t i = 0; i < count; ++i)
    detail::copy_into(out.select(k, i), tensors[static_cast<std::size_t>(i)].detach());
  return record<T>("stack", out, tensors, [wanted = wanted_grads(tensors), k, count](const Tensor<T>& g) {
    std::vector<Tensor<T>> grads(wanted.size());
    for (std::int64_t i = 0; i < count; ++i) {
      const auto u = static_cast<std::size_t>(i);
      if (wanted[u]) grads[u] = detail::owned_copy(g.detach().select(k, i));
    }
    return grads;
  });
}

#define GKD_INSTANTIATE_JOIN(T)                                                    \
  template Tensor<T> concat<T>(const std::vector<Tensor<T>>&, std::int64_t);      \
  template Tensor<T> stack<T>(const std::vector<Tensor<T>>&, std::int64_t);
GKD_INSTANTIATE_JOIN(float)
GKD_INSTANTIATE_JOIN(double)
#undef GKD_INSTANTIATE_JOIN

}  // namespace gkd::cuda
