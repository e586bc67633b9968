// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The element types a gkd tensor may hold: float32 (training) and float64 (gradient checks,
/// reference computations). The dtype is part of the tensor's type, so a float/double mismatch is
/// a compile error rather than a run-time surprise.
#include <concepts>
#include <string_view>

namespace gkd {

/// The element types of gkd tensors.
template <class T>
concept Real = std::same_as<T, float> || std::same_as<T, double>;

/// "float32" or "float64", as PyTorch and safetensors name them.
template <Real T>
constexpr std::string_view dtype_name() {
  return std::same_as<T, float> ? "float32" : "float64";
}

}  // namespace gkd
