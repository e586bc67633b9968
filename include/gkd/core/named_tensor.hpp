// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::NamedTensor<T>`: a tensor with its hierarchical name, the unit that modules enumerate
/// (`state_dict`-style keys such as `conv1.0.weight`, `bn.running_mean`) and that checkpoints
/// read and write.
///
/// Example:
/// @code
///   std::vector<gkd::NamedTensor<float>> state{{"fc.weight", w}, {"fc.bias", b}};
///   for (auto& [name, t] : state) std::cout << name << " " << gkd::to_string(t.shape()) << "\n";
/// @endcode
///
/// The tensor is a handle: it shares storage with the module's parameter or buffer, so writing
/// into it (for example when loading a checkpoint) updates the module in place.
#include <string>
#include <vector>

#include "gkd/core/tensor.hpp"

namespace gkd {

template <Real T>
struct NamedTensor {
  std::string name;
  Tensor<T> tensor;
};

template <Real T>
using NamedTensors = std::vector<NamedTensor<T>>;

}  // namespace gkd
