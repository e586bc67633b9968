// SPDX-License-Identifier: Apache-2.0
// batch_norm2d through cuDNN's legacy batch-norm API with autograd. Missing weight/bias become ones
// and zeros; running statistics that are not contiguous are updated through contiguous copies.
#include "gkd/cuda/norm.hpp"

#include <cmath>
#include <string_view>
#include <vector>

#include "ops/dnn.hpp"
#include "ops/elementwise_kernels.hpp"

namespace gkd::cuda {
namespace {

constexpr std::string_view kOp = "batch_norm2d";

/// The gradients of evaluation mode, where y = (x - mean) * invstd * w + b with constant mean and
/// invstd = 1 / sqrt(var + eps): dx = g * invstd * w, dw = sum g * (x - mean) * invstd, db = sum g.
template <Real T>
std::vector<Tensor<T>> eval_backward(const Tensor<T>& g, const Shape& shape, const Tensor<T>& xc, const Tensor<T>& wc,
                                     const Tensor<T>& mean, const Tensor<T>& var, double eps, bool gx, bool gw,
                                     bool gb) {
  const Tensor<T> gc = g.contiguous_copy_if_needed();
  const std::int64_t channels = shape[1];
  // Per-channel factors on the host (C values), in double like the CPU op.
  const Tensor<T> var_h = var.cpu();
  const Tensor<T> w_h = wc.defined() ? wc.cpu() : Tensor<T>();
  std::vector<T> invstd(static_cast<std::size_t>(channels)), scale(static_cast<std::size_t>(channels));
  for (std::int64_t c = 0; c < channels; ++c) {
    const double s = 1.0 / std::sqrt(static_cast<double>(var_h.data()[c]) + eps);
    invstd[static_cast<std::size_t>(c)] = static_cast<T>(s);
    scale[static_cast<std::size_t>(c)] = static_cast<T>(s * (w_h.defined() ? static_cast<double>(w_h.data()[c]) : 1.0));
  }
  const StridedPair per_channel = detail::strided_pair(shape, contiguous_strides(shape), Strides{0, 1, 0, 0});
  const std::int64_t n = gc.numel();
  Tensor<T> dx, dw, db;
  if (gx) {
    const Tensor<T> scale_d = Tensor<T>::from({channels}, scale).to(gc.device());
    dx = Tensor<T>::empty(shape, gc.device());
    if (n > 0) launch_binary(BinaryOp::Mul, gc.data(), scale_d.data(), dx.data(), n, &per_channel);
  }
  if (gw) {
    const Tensor<T> invstd_d = Tensor<T>::from({channels}, invstd).to(gc.device());
    Tensor<T> t = Tensor<T>::empty(shape, gc.device());
    if (n > 0) {
      launch_binary(BinaryOp::Sub, xc.data(), mean.data(), t.data(), n, &per_channel);
      launch_binary(BinaryOp::Mul, t.data(), invstd_d.data(), t.data(), n, &per_channel);
      launch_binary(BinaryOp::Mul, t.data(), gc.data(), t.data(), n, static_cast<const StridedPair*>(nullptr));
    }
    dw = detail::sum_to(t, Shape{1, channels, 1, 1}).reshape({channels});
  }
  if (gb) db = detail::sum_to(gc, Shape{1, channels, 1, 1}).reshape({channels});
  return {dx, dw, db};
}

}  // namespace

template <Real T>
Tensor<T> batch_norm2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                       const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training, double momentum,
                       double eps) {
  GKD_CHECK(x.defined(), kOp, "input is an undefined tensor");
  GKD_CHECK(x.device().is_cuda(), kOp, "expected a CUDA tensor, got one on " << x.device().str());
  GKD_CHECK(x.dim() == 4, kOp, "input must be 4-D (N, C, H, W), got " << to_string(x.shape()));
  const Shape& shape = x.shape();
  const std::int64_t batch = shape[0], channels = shape[1], plane = shape[2] * shape[3];
  auto check_param = [&](const Tensor<T>& p, const char* what) {
    if (!p.defined()) return;
    GKD_CHECK(p.device() == x.device(), kOp,
              what << " is on " << p.device().str() << " but the input is on " << x.device().str());
    GKD_CHECK(p.dim() == 1 && p.shape()[0] == channels, kOp,
              what << " " << to_string(p.shape()) << " does not match input " << to_string(shape) << " (expected ["
                   << channels << "])");
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  check_param(running_mean, "running_mean");
  check_param(running_var, "running_var");
  GKD_CHECK(training || (running_mean.defined() && running_var.defined()), kOp,
            "evaluation mode needs running_mean and running_var (input " << to_string(shape) << ")");
  GKD_CHECK(!training || batch * plane > 1, kOp,
            "expected more than 1 value per channel when training, got input " << to_string(shape));
  GKD_CHECK(eps >= 0 && eps >= CUDNN_BN_MIN_EPSILON, kOp,
            "eps must be at least " << CUDNN_BN_MIN_EPSILON << " (cuDNN's minimum), got " << eps);

  const Device device = x.device();
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  const Tensor<T> wc = weight.defined() ? weight.contiguous_copy_if_needed() : Tensor<T>();
  Tensor<T> y = Tensor<T>::empty(shape, device);
  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);

  if (x.numel() == 0) {  // nothing to normalise (and no statistics to update: N*H*W > 1 when training)
    return record(kOp, y, {x, weight, bias}, [shape, channels, device, gx, gw, gb](const Tensor<T>&) {
      return std::vector<Tensor<T>>{gx ? Tensor<T>::zeros(shape, device) : Tensor<T>(),
                                    gw ? Tensor<T>::zeros({channels}, device) : Tensor<T>(),
                                    gb ? Tensor<T>::zeros({channels}, device) : Tensor<T>()};
    });
  }

  const cudnnDataType_t type = dnn::data_type<T>();
  const dnn::TensorDesc xd(type, shape, kOp);
  const dnn::TensorDesc pd(type, 1, channels, 1, 1, kOp);
  const Tensor<T> scale = wc.defined() ? wc : Tensor<T>::ones({channels}, device);
  const Tensor<T> shift = bias.defined() ? bias.contiguous_copy_if_needed() : Tensor<T>::zeros({channels}, device);
  const T one = 1, zero = 0;

  if (!training) {
    // Snapshots: later in-place updates of the running statistics must not change this op's gradient.
    const Tensor<T> mean = detail::owned_copy(running_mean), var = detail::owned_copy(running_var);
    GKD_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(dnn::handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d,
                                                            xc.data(), xd.d, y.data(), pd.d, scale.data(),
                                                            shift.data(), mean.data(), var.data(), eps));
    return record(kOp, y, {x, weight, bias},
                  [xc = gw ? xc : Tensor<T>(), shape, wc, mean, var, eps, gx, gw, gb](const Tensor<T>& g) {
                    return eval_backward(g, shape, xc, wc, mean, var, eps, gx, gw, gb);
                  });
  }

  // Running statistics: updated in place when contiguous, else through a copy written back; cuDNN
  // wants both or neither, so a missing one gets a throwaway buffer.
  const bool any_running = running_mean.defined() || running_var.defined();
  const Tensor<T> rm = running_mean.defined() ? running_mean.contiguous_copy_if_needed()
                       : any_running          ? Tensor<T>::zeros({channels}, device)
                                              : Tensor<T>();
  const Tensor<T> rv = running_var.defined() ? running_var.contiguous_copy_if_needed()
                       : any_running         ? Tensor<T>::ones({channels}, device)
                                             : Tensor<T>();
  Tensor<T> saved_mean = Tensor<T>::empty({channels}, device), saved_invstd = Tensor<T>::empty({channels}, device);
  GKD_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      dnn::handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d, xc.data(), xd.d, y.data(), pd.d, scale.data(),
      shift.data(), momentum, any_running ? rm.data() : nullptr, any_running ? rv.data() : nullptr, eps,
      saved_mean.data(), saved_invstd.data()));
  if (running_mean.defined() && !running_mean.is_contiguous()) detail::copy_into(running_mean, rm);
  if (running_var.defined() && !running_var.is_contiguous()) detail::copy_into(running_var, rv);

  return record(kOp, y, {x, weight, bias},
                [xc, scale, saved_mean, saved_invstd, shape, channels, eps, gx, gw, gb](const Tensor<T>& g) {
                  const Tensor<T> gc = g.contiguous_copy_if_needed();
                  const cudnnDataType_t t = dnn::data_type<T>();
                  const dnn::TensorDesc xd_(t, shape, kOp), pd_(t, 1, channels, 1, 1, kOp);
                  // cuDNN always writes all three results: unneeded ones go to scratch tensors.
                  Tensor<T> dx = Tensor<T>::empty(shape, gc.device());
                  Tensor<T> dw = Tensor<T>::empty({channels}, gc.device());
                  Tensor<T> db = Tensor<T>::empty({channels}, gc.device());
                  const T one_ = 1, zero_ = 0;
                  GKD_CUDNN_CHECK(cudnnBatchNormalizationBackward(
                      dnn::handle(), CUDNN_BATCHNORM_SPATIAL, &one_, &zero_, &one_, &zero_, xd_.d, xc.data(), xd_.d,
                      gc.data(), xd_.d, dx.data(), pd_.d, scale.data(), dw.data(), db.data(), eps, saved_mean.data(),
                      saved_invstd.data()));
                  return std::vector<Tensor<T>>{gx ? dx : Tensor<T>(), gw ? dw : Tensor<T>(), gb ? db : Tensor<T>()};
                });
}

template Tensor<float> batch_norm2d<float>(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&,
                                           const Tensor<float>&, const Tensor<float>&, bool, double, double);
template Tensor<double> batch_norm2d<double>(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&,
                                             const Tensor<double>&, const Tensor<double>&, bool, double, double);

}  // namespace gkd::cuda
