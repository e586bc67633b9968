// SPDX-License-Identifier: Apache-2.0
// CUDA max_pool2d_indices and max_unpool2d (include/gkd/cuda/unpool.hpp); kernels in unpool_kernels.cu.
#include "gkd/cuda/unpool.hpp"

#include <string_view>

#include "gkd/cuda/memory.hpp"
#include "ops/unpool_kernels.hpp"

namespace gkd::cuda {

template <Real T>
std::shared_ptr<const std::int64_t> max_pool2d_indices(const Tensor<T>& x, std::int64_t kernel_h,
                                                       std::int64_t kernel_w) {
  constexpr std::string_view op = "max_pool2d_indices";
  GKD_CHECK(x.defined() && x.device().is_cuda(), op, "expected a CUDA tensor, got one on " << x.device().str());
  GKD_CHECK(x.dim() == 4 && kernel_h > 0 && kernel_w > 0 && x.shape()[2] >= kernel_h && x.shape()[3] >= kernel_w, op,
            "kernel " << kernel_h << "x" << kernel_w << " does not fit input " << to_string(x.shape()));
  const std::int64_t planes = x.shape()[0] * x.shape()[1], in_h = x.shape()[2], in_w = x.shape()[3];
  const std::int64_t out_h = in_h / kernel_h, out_w = in_w / kernel_w;
  const auto bytes = static_cast<std::size_t>(planes * out_h * out_w) * sizeof(std::int64_t);
  std::shared_ptr<std::int64_t> index(static_cast<std::int64_t*>(allocate(bytes, x.device().index)),
                                      [](std::int64_t* p) { deallocate(p); });
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  launch_max_pool_indices(xc.data(), index.get(), planes, in_h, in_w, out_h, out_w, kernel_h, kernel_w);
  return index;
}

template <Real T>
Tensor<T> max_unpool2d(const Tensor<T>& x, const std::shared_ptr<const std::int64_t>& index, const Shape& input_shape) {
  constexpr std::string_view op = "max_unpool2d";
  GKD_CHECK(x.defined() && x.device().is_cuda(), op, "expected a CUDA tensor, got one on " << x.device().str());
  GKD_CHECK(x.dim() == 4 && input_shape.size() == 4 && x.shape()[0] == input_shape[0] && x.shape()[1] == input_shape[1],
            op, "input " << to_string(x.shape()) << " does not pool " << to_string(input_shape));
  const std::int64_t planes = x.shape()[0] * x.shape()[1];
  const std::int64_t plane_in = input_shape[2] * input_shape[3], plane_out = x.shape()[2] * x.shape()[3];
  GKD_CHECK(index || planes * plane_out == 0, op, "no device positions for input " << to_string(x.shape()));
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::zeros(input_shape, x.device());
  launch_max_unpool(xc.data(), index.get(), y.data(), planes, plane_in, plane_out);
  return record(op, y, {x}, [index, shape = x.shape(), planes, plane_in, plane_out](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape, gc.device());
    launch_max_unpool_backward(gc.data(), index.get(), dx.data(), planes, plane_in, plane_out);
    return std::vector<Tensor<T>>{dx};
  });
}

#define GKD_UNPOOL_OPS(T)                                                                                          \
  template std::shared_ptr<const std::int64_t> max_pool2d_indices<T>(const Tensor<T>&, std::int64_t, std::int64_t); \
  template Tensor<T> max_unpool2d<T>(const Tensor<T>&, const std::shared_ptr<const std::int64_t>&, const Shape&);
GKD_UNPOOL_OPS(float)
GKD_UNPOOL_OPS(double)
#undef GKD_UNPOOL_OPS

}  // namespace gkd::cuda
