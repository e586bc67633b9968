// SPDX-License-Identifier: Apache-2.0
// Tensor-level CUDA dropout / dropout2d with autograd; the mask is recomputed in the backward from
// the key drawn in the forward.
#include "gkd/cuda/dropout.hpp"

#include <string_view>

#include "gkd/ops/dropout.hpp"
#include "ops/dropout_kernels.hpp"

namespace gkd::cuda {
namespace {

template <Real T>
Tensor<T> dropout_impl(std::string_view op, const Tensor<T>& x, double p, std::int64_t group, Generator& gen) {
  const std::uint64_t key = gen.next();
  const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.device());
  launch_dropout(xc.data(), y.data(), x.numel(), group, key, p, scale);
  return record(op, y, {x}, [key, p, scale, group](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(gc.shape(), gc.device());
    launch_dropout(gc.data(), dx.data(), gc.numel(), group, key, p, scale);
    return std::vector<Tensor<T>>{dx};
  });
}

template <Real T>
void check_device(const Tensor<T>& x, std::string_view op) {
  GKD_CHECK(x.defined(), op, "input is an undefined tensor");
  GKD_CHECK(x.device().is_cuda(), op, "expected a CUDA tensor, got one on " << x.device().str());
}

}  // namespace

template <Real T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& gen) {
  check_device(x, "dropout");
  detail::check_dropout_p("dropout", p, x.shape());
  if (!training || p == 0.0) return x;
  return dropout_impl("dropout", x, p, 1, gen);
}

template <Real T>
Tensor<T> dropout2d(const Tensor<T>& x, double p, bool training, Generator& gen) {
  check_device(x, "dropout2d");
  GKD_CHECK(x.dim() == 4, "dropout2d", "input must be 4-D (N, C, H, W), got " << to_string(x.shape()));
  detail::check_dropout_p("dropout2d", p, x.shape());
  if (!training || p == 0.0) return x;
  return dropout_impl("dropout2d", x, p, x.shape()[2] * x.shape()[3], gen);
}

#define GKD_INSTANTIATE_DROPOUT(T)                                                  \
  template Tensor<T> dropout<T>(const Tensor<T>&, double, bool, Generator&);       \
  template Tensor<T> dropout2d<T>(const Tensor<T>&, double, bool, Generator&);
GKD_INSTANTIATE_DROPOUT(float)
GKD_INSTANTIATE_DROPOUT(double)
#undef GKD_INSTANTIATE_DROPOUT

}  // namespace gkd::cuda
