// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Activation modules: `ReLU`, `ReLU6`, `GELU` (exact erf form), `Sigmoid`, `Identity` (no tensors,
/// but they occupy their index inside a Sequential exactly as in PyTorch) and `PReLU` with one learnable
/// slope `weight` (init 0.25, PyTorch's default) shared by all channels.
/// @code
///   gkd::nn::Sequential<gkd::nn::Conv2d<float>, gkd::nn::ReLU<float>> block(conv, {});
///   gkd::nn::PReLU<float> act;
///   auto y = act.forward(x);    // max(0, x) + 0.25 * min(0, x)
/// @endcode
#include "gkd/nn/module.hpp"
#include "gkd/ops/elementwise.hpp"

namespace gkd::nn {

#define GKD_NN_STATELESS(Name, expr)                   \
  template <Real T>                                    \
  struct Name {                                        \
    using value_type = T;                              \
    Tensor<T> forward(const Tensor<T>& x) const {      \
      return expr;                                     \
    }                                                  \
    template <class V>                                 \
    void visit(V&) {}                                  \
  };

GKD_NN_STATELESS(GELU, gelu(x))
GKD_NN_STATELESS(Sigmoid, sigmoid(x))
GKD_NN_STATELESS(Identity, x)
#undef GKD_NN_STATELESS

/// ReLU and ReLU6 name their `fused_activation`: inside a Sequential, a layer right before them whose
/// forward takes a FusedActivation (BatchNorm2d) applies them in its own pass.
template <Real T>
struct ReLU {
  using value_type = T;
  static constexpr FusedActivation fused_activation = FusedActivation::ReLU;
  Tensor<T> forward(const Tensor<T>& x) const { return relu(x); }
  template <class V>
  void visit(V&) {}
};
template <Real T>
struct ReLU6 {
  using value_type = T;
  static constexpr FusedActivation fused_activation = FusedActivation::ReLU6;
  Tensor<T> forward(const Tensor<T>& x) const { return relu6(x); }
  template <class V>
  void visit(V&) {}
};

template <Real T>
struct PReLU {
  using value_type = T;
  Tensor<T> weight = Tensor<T>::full({1}, T(0.25)).requires_grad();
  Tensor<T> forward(const Tensor<T>& x) const { return sub(relu(x), mul(relu(neg(x)), weight)); }
  template <class V>
  void visit(V& v) {
    v.parameter("weight", weight);
  }
};

}  // namespace gkd::nn
