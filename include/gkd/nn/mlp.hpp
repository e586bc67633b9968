// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `GeluMlp`: Linear(in, hidden) -> GELU -> Linear(hidden, out) over the last dim, children `fc1`, `fc2`
/// (timm's `Mlp` naming). The MSAN vector bottleneck is built from these (see models/msan.hpp).
/// @code
///   gkd::Generator gen(0);
///   gkd::nn::GeluMlp<float> mlp({.in = 256, .hidden = 64, .out = 1}, gen);
///   auto z = mlp.forward(x);   // [..., 256] -> [..., 1]
/// @endcode
#include "gkd/nn/linear.hpp"

namespace gkd::nn {

struct GeluMlpSpec {
  std::int64_t in = 0, hidden = 0, out = 0;
};

template <Real T>
struct GeluMlp {
  using value_type = T;
  Linear<T> fc1, fc2;
  GeluMlp(const GeluMlpSpec& s, Generator& gen) : fc1({.in = s.in, .out = s.hidden}, gen), fc2({.in = s.hidden, .out = s.out}, gen) {}
  Tensor<T> forward(const Tensor<T>& x) const { return fc2.forward(gelu(fc1.forward(x))); }
  template <class V>
  void visit(V& v) {
    v.child("fc1", fc1);
    v.child("fc2", fc2);
  }
};

}  // namespace gkd::nn
