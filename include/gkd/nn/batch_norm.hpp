// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `BatchNorm2d`: affine `weight` (1) and `bias` (0), buffers `running_mean` (0), `running_var` (1)
/// and `num_batches_tracked`, under PyTorch's names. Training normalises with batch statistics and
/// updates the running ones (momentum as PyTorch); evaluation uses the running statistics.
/// @code
///   gkd::nn::BatchNorm2d<float> bn({.channels = 64});
///   auto y = bn.forward(x);      // training: batch statistics
///   auto r = bn.forward(x, gkd::FusedActivation::ReLU);   // relu(bn.forward(x)) in one pass
///   bn.training = false;         // or gkd::nn::eval(model)
/// @endcode
#include "gkd/nn/module.hpp"
#include "gkd/ops/norm.hpp"

namespace gkd::nn {

struct BatchNorm2dSpec {
  std::int64_t channels = 0;
  double eps = 1e-5;
  double momentum = 0.1;
};

template <Real T>
struct BatchNorm2d {
  using value_type = T;
  BatchNorm2dSpec spec;
  bool training = true;
  Tensor<T> weight, bias, running_mean, running_var, num_batches_tracked;

  explicit BatchNorm2d(const BatchNorm2dSpec& s) : spec(s) {
    GKD_CHECK(s.channels > 0, "BatchNorm2d", "channels must be positive, got " << s.channels);
    weight = Tensor<T>::ones({s.channels}).requires_grad();
    bias = Tensor<T>::zeros({s.channels}).requires_grad();
    running_mean = Tensor<T>::zeros({s.channels});
    running_var = Tensor<T>::ones({s.channels});
    num_batches_tracked = Tensor<T>::zeros({});
  }
  std::int64_t in_channels() const { return spec.channels; }
  std::int64_t out_channels() const { return spec.channels; }
  /// The normalised x, then `activation` in the same pass (a Sequential passes the ReLU or ReLU6 that
  /// follows this layer here).
  Tensor<T> forward(const Tensor<T>& x, FusedActivation activation = FusedActivation::None) {
    GKD_CHECK(x.dim() == 4 && x.shape()[1] == spec.channels, "BatchNorm2d",
              "expected input [N, " << spec.channels << ", H, W], got " << to_string(x.shape()));
    if (training)  // in place, on the buffer's device
      gkd::detail::accumulate(num_batches_tracked, Tensor<T>::full({}, T(1), num_batches_tracked.device()));
    return batch_norm2d(x, weight, bias, running_mean, running_var, training, spec.momentum, spec.eps, activation);
  }
  template <class V>
  void visit(V& v) {
    v.parameter("weight", weight);
    v.parameter("bias", bias);
    v.buffer("running_mean", running_mean);
    v.buffer("running_var", running_var);
    v.buffer("num_batches_tracked", num_batches_tracked);
  }
};

}  // namespace gkd::nn
