// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `Linear`: y = x Wᵀ + b over the last dim, `weight` [out, in] and `bias` [out], PyTorch's default
/// initialisation from a Generator.
/// @code
///   gkd::Generator gen(0);
///   gkd::nn::Linear<float> fc({.in = 256, .out = 64}, gen);
///   auto y = fc.forward(x);   // x [..., 256] -> [..., 64]
/// @endcode
#include "gkd/nn/conv.hpp"
#include "gkd/ops/linalg.hpp"

namespace gkd::nn {

struct LinearSpec {
  std::int64_t in = 0, out = 0;
  bool bias = true;
};

template <Real T>
struct Linear {
  using value_type = T;
  LinearSpec spec;
  Tensor<T> weight, bias;

  Linear(const LinearSpec& s, Generator& gen) : spec(s) {
    GKD_CHECK(s.in > 0 && s.out > 0, "Linear", "in " << s.in << " and out " << s.out << " must be positive");
    weight = Tensor<T>::empty({s.out, s.in});
    if (s.bias) bias = Tensor<T>::empty({s.out});
    detail::default_init(weight, bias, gen);
    weight.requires_grad();
    if (bias.defined()) bias.requires_grad();
  }
  Tensor<T> forward(const Tensor<T>& x) const {
    GKD_CHECK(x.dim() >= 1 && x.shape().back() == spec.in, "Linear",
              "expected input [..., " << spec.in << "], got " << to_string(x.shape()));
    return linear(x, weight, bias);
  }
  template <class V>
  void visit(V& v) {
    v.parameter("weight", weight);
    if (bias.defined()) v.parameter("bias", bias);
  }
};

}  // namespace gkd::nn
