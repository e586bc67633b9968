// SPDX-License-Identifier: Apache-2.0
// Must not compile: visit() names a child that is not a Module (a raw tensor passed as a child).
#include "gkd/nn/nn.hpp"

struct Broken {
  using value_type = float;
  gkd::Tensor<float> weight = gkd::Tensor<float>::zeros({2});
  template <class V>
  void visit(V& v) {
    v.child("weight", weight);
  }
};

int main() {
  Broken b;
  return static_cast<int>(gkd::nn::state_dict(b).size());
}
