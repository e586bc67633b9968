// SPDX-License-Identifier: Apache-2.0
// max_pool2d and avg_pool2d through cuDNN pooling where it can express them (else, and for
// adaptive_avg_pool2d, through pool_kernels.cu), all with autograd.
#include "gkd/cuda/pool.hpp"

#include <memory>
#include <string_view>

#include "gkd/ops/pool.hpp"
#include "ops/dnn.hpp"
#include "ops/pool_kernels.hpp"

namespace gkd::cuda {
namespace {

template <Real T>
void check_input(const Tensor<T>& x, std::string_view op) {
  GKD_CHECK(x.defined(), op, "input is an undefined tensor");
  GKD_CHECK(x.device().is_cuda(), op, "expected a CUDA tensor, got one on " << x.device().str());
  GKD_CHECK(x.dim() == 3 || x.dim() == 4, op,
            "input must be 3-D (C, H, W) or 4-D (N, C, H, W), got " << to_string(x.shape()));
}

/// The CPU op's validation and output size.
template <Real T>
detail::PoolGeometry geometry(std::string_view op, const Tensor<T>& x, const PoolParams& p, bool ceil_mode) {
  check_input(x, op);
  return detail::pool_geometry(op, x, Size2(p.kernel_h, p.kernel_w), Size2(p.stride_h, p.stride_w),
                               Size2(p.pad_h, p.pad_w), Size2(p.dilation_h, p.dilation_w), ceil_mode);
}

/// Whether cuDNN pooling computes g: it has no dilation and sizes its output by rounding down.
bool cudnn_expressible(const detail::PoolGeometry& g) {
  return g.dh == 1 && g.dw == 1 && g.out_h == detail::pool_output_size(g.in_h, g.kh, g.ph, g.sh, 1, false) &&
         g.out_w == detail::pool_output_size(g.in_w, g.kw, g.pw, g.sw, 1, false);
}

PoolWindows windows(const detail::PoolGeometry& g) {
  return {g.planes, g.in_h, g.in_w, g.out_h, g.out_w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

/// Max pooling by our kernels (dilation, ceil_mode's extra windows), keeping the argmax for backward.
template <Real T>
Tensor<T> max_pool_own(std::string_view op, const Tensor<T>& x, const detail::PoolGeometry& g) {
  const PoolWindows w = windows(g);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(detail::pooled_shape(x.shape(), g.out_h, g.out_w), x.device());
  const bool gx = needs_grad(x) && grad_enabled();
  const std::size_t index_bytes = static_cast<std::size_t>(y.numel()) * sizeof(std::int64_t);
  std::shared_ptr<void> index(gx && index_bytes ? allocate(index_bytes, x.device().index) : nullptr,
                              [](void* ptr) { deallocate(ptr); });
  launch_max_pool(xc.data(), y.data(), static_cast<std::int64_t*>(index.get()), w);
  return record(op, y, {x}, [index, w, shape = x.shape()](const Tensor<T>& grad) {
    const Tensor<T> gc = grad.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape, gc.device());
    launch_max_pool_backward(gc.data(), static_cast<const std::int64_t*>(index.get()), dx.data(), w);
    return std::vector<Tensor<T>>{dx};
  });
}

/// Average pooling by our kernels (ceil_mode's extra windows).
template <Real T>
Tensor<T> avg_pool_own(std::string_view op, const Tensor<T>& x, const detail::PoolGeometry& g, bool count_include_pad) {
  const PoolWindows w = windows(g);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(detail::pooled_shape(x.shape(), g.out_h, g.out_w), x.device());
  launch_avg_pool(xc.data(), y.data(), w, count_include_pad);
  return record(op, y, {x}, [w, count_include_pad, shape = x.shape()](const Tensor<T>& grad) {
    const Tensor<T> gc = grad.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape, gc.device());
    launch_avg_pool_backward(gc.data(), dx.data(), w, count_include_pad);
    return std::vector<Tensor<T>>{dx};
  });
}

struct PoolingDesc {
  cudnnPoolingDescriptor_t d = nullptr;
  PoolingDesc(cudnnPoolingMode_t mode, const detail::PoolGeometry& g, std::string_view op) {
    const int v[6] = {dnn::narrow(g.kh, op), dnn::narrow(g.kw, op), dnn::narrow(g.ph, op),
                      dnn::narrow(g.pw, op), dnn::narrow(g.sh, op), dnn::narrow(g.sw, op)};
    GKD_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&d));
    GKD_CUDNN_CHECK(cudnnSetPooling2dDescriptor(d, mode, CUDNN_PROPAGATE_NAN, v[0], v[1], v[2], v[3], v[4], v[5]));
  }
  ~PoolingDesc() { (void)cudnnDestroyPoolingDescriptor(d); }
  PoolingDesc(const PoolingDesc&) = delete;
  PoolingDesc& operator=(const PoolingDesc&) = delete;
};

/// One cuDNN pooling over the planes of x (each plane an image of one channel), with autograd.
template <Real T>
Tensor<T> pool(std::string_view op, const Tensor<T>& x, const detail::PoolGeometry& g, cudnnPoolingMode_t mode) {
  const Shape out_shape = detail::pooled_shape(x.shape(), g.out_h, g.out_w);
  Tensor<T> y = Tensor<T>::empty(out_shape, x.device());
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  const T one = 1, zero = 0;
  if (g.planes > 0) {
    const PoolingDesc pd(mode, g, op);
    const dnn::TensorDesc xd(dnn::data_type<T>(), g.planes, 1, g.in_h, g.in_w, op);
    const dnn::TensorDesc yd(dnn::data_type<T>(), g.planes, 1, g.out_h, g.out_w, op);
    GKD_CUDNN_CHECK(cudnnPoolingForward(dnn::handle(), pd.d, &one, xd.d, xc.data(), &zero, yd.d, y.data()));
  }
  // cudnnPoolingBackward reads x and y (max pooling finds the argmax again).
  return record(op, y, {x}, [xc, y = y.detach(), g, mode, op](const Tensor<T>& grad) {
    const Tensor<T> gc = grad.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(xc.shape(), gc.device());
    if (g.planes > 0) {
      const T one_ = 1, zero_ = 0;
      const PoolingDesc pd(mode, g, op);
      const dnn::TensorDesc xd(dnn::data_type<T>(), g.planes, 1, g.in_h, g.in_w, op);
      const dnn::TensorDesc yd(dnn::data_type<T>(), g.planes, 1, g.out_h, g.out_w, op);
      GKD_CUDNN_CHECK(cudnnPoolingBackward(dnn::handle(), pd.d, &one_, yd.d, y.data(), yd.d, gc.data(), xd.d,
                                           xc.data(), &zero_, xd.d, dx.data()));
    }
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace

template <Real T>
Tensor<T> max_pool2d(const Tensor<T>& x, const PoolParams& params, bool ceil_mode) {
  constexpr std::string_view op = "max_pool2d";
  const detail::PoolGeometry g = geometry(op, x, params, ceil_mode);
  if (!cudnn_expressible(g)) return max_pool_own(op, x, g);
  return pool(op, x, g, CUDNN_POOLING_MAX_DETERMINISTIC);
}

template <Real T>
Tensor<T> avg_pool2d(const Tensor<T>& x, const PoolParams& params, bool ceil_mode, bool count_include_pad) {
  constexpr std::string_view op = "avg_pool2d";
  const detail::PoolGeometry g = geometry(op, x, params, ceil_mode);
  GKD_CHECK(g.dh == 1 && g.dw == 1, op, "average pooling has no dilation, got " << Size2(g.dh, g.dw));
  if (!cudnn_expressible(g)) return avg_pool_own(op, x, g, count_include_pad);
  // When cuDNN's floor-sized output is the op's, no window reaches past the padded input, so
  // "count the padding" divides by kh*kw exactly as the CPU op's clipped-window rule does.
  return pool(op, x, g,
              count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING);
}

template <Real T>
Tensor<T> adaptive_avg_pool2d(const Tensor<T>& x, std::int64_t out_h, std::int64_t out_w) {
  constexpr std::string_view op = "adaptive_avg_pool2d";
  check_input(x, op);
  GKD_CHECK(out_h > 0 && out_w > 0, op,
            "output size must be positive, got " << Size2(out_h, out_w) << " for input " << to_string(x.shape()));
  const std::size_t d = x.dim();
  const std::int64_t in_h = x.shape()[d - 2], in_w = x.shape()[d - 1];
  GKD_CHECK(in_h > 0 && in_w > 0, op, "input " << to_string(x.shape()) << " has an empty plane");
  const std::int64_t planes = x.numel() / (in_h * in_w);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(detail::pooled_shape(x.shape(), out_h, out_w), x.device());
  launch_adaptive_avg_pool(xc.data(), y.data(), planes, in_h, in_w, out_h, out_w);
  return record(op, y, {x}, [shape = x.shape(), planes, in_h, in_w, out_h, out_w](const Tensor<T>& grad) {
    const Tensor<T> gc = grad.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape, gc.device());
    launch_adaptive_avg_pool_backward(gc.data(), dx.data(), planes, in_h, in_w, out_h, out_w);
    return std::vector<Tensor<T>>{dx};
  });
}

template Tensor<float> max_pool2d<float>(const Tensor<float>&, const PoolParams&, bool);
template Tensor<double> max_pool2d<double>(const Tensor<double>&, const PoolParams&, bool);
template Tensor<float> avg_pool2d<float>(const Tensor<float>&, const PoolParams&, bool, bool);
template Tensor<double> avg_pool2d<double>(const Tensor<double>&, const PoolParams&, bool, bool);
template Tensor<float> adaptive_avg_pool2d<float>(const Tensor<float>&, std::int64_t, std::int64_t);
template Tensor<double> adaptive_avg_pool2d<double>(const Tensor<double>&, std::int64_t, std::int64_t);

}  // namespace gkd::cuda
