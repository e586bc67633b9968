// SPDX-License-Identifier: Apache-2.0
// Tensor-level CUDA pad with autograd; arguments are validated by the CPU op's own rules.
#include "gkd/cuda/pad.hpp"

#include "gkd/ops/pad.hpp"
#include "ops/pad_kernels.hpp"

namespace gkd::cuda {

template <Real T>
Tensor<T> pad(const Tensor<T>& x, const std::vector<std::int64_t>& pads, PadMode mode, T value) {
  GKD_CHECK(x.defined(), "pad", "input is an undefined tensor");
  GKD_CHECK(x.device().is_cuda(), "pad", "expected a CUDA tensor, got one on " << x.device().str());
  const Shape out_shape = detail::pad_output_shape<T>(x.shape(), pads, mode, value);
  GKD_CHECK(x.dim() <= static_cast<std::size_t>(kMaxRank), "pad",
            "tensors of rank " << x.dim() << " exceed the CUDA limit of " << kMaxRank);
  PadLayout layout;
  layout.rank = static_cast<int>(x.dim());
  layout.kind = mode == PadMode::Reflect     ? PadKind::Reflect
                : mode == PadMode::Replicate ? PadKind::Replicate
                                             : PadKind::Constant;
  for (std::size_t k = 0; k < x.dim(); ++k) {
    const std::size_t p = x.dim() - 1 - k;  // pair index of dim k (pairs run from the last dim)
    layout.in[k] = x.shape()[k];
    layout.out[k] = out_shape[k];
    layout.before[k] = 2 * p < pads.size() ? pads[2 * p] : 0;
  }
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(out_shape, x.device());
  launch_pad(xc.data(), y.data(), layout, y.numel(), value);
  return record("pad", y, {x}, [layout, shape = x.shape()](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::zeros(shape, gc.device());
    launch_pad_backward(gc.data(), dx.data(), layout, gc.numel());
    return std::vector<Tensor<T>>{dx};
  });
}

template Tensor<float> pad<float>(const Tensor<float>&, const std::vector<std::int64_t>&, PadMode, float);
template Tensor<double> pad<double>(const Tensor<double>&, const std::vector<std::int64_t>&, PadMode, double);

}  // namespace gkd::cuda
