// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Where a tensor's storage lives. The CPU path is header-only; CUDA storage comes from the optional
/// `gkd::cuda` library, and every CPU op rejects device tensors with a clear gkd::Error.
#include <string>

namespace gkd {

/// A memory space: the host, or one CUDA device.
struct Device {
  enum class Kind { CPU, CUDA };
  Kind kind = Kind::CPU;
  int index = 0;  ///< CUDA ordinal; 0 for the CPU

  [[nodiscard]] constexpr bool is_cpu() const noexcept { return kind == Kind::CPU; }
  [[nodiscard]] constexpr bool is_cuda() const noexcept { return kind == Kind::CUDA; }
  friend bool operator==(const Device&, const Device&) = default;
  [[nodiscard]] std::string str() const {
    return kind == Kind::CPU ? std::string("cpu") : "cuda:" + std::to_string(index);
  }
};

/// The host device.
inline constexpr Device kCPU{Device::Kind::CPU, 0};
/// CUDA device `index` (tensors there need the program linked with `gkd::cuda`).
constexpr Device cuda_device(int index = 0) { return Device{Device::Kind::CUDA, index}; }

}  // namespace gkd
