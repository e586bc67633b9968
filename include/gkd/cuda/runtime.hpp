// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Whether a CUDA device can be used, asked of the compiled `gkd::cuda` library. Including this
/// header needs neither nvcc nor the CUDA headers; calling it needs `gkd::cuda` linked.
///
/// Example:
/// @code
///   if (!gkd::cuda::available()) std::cout << gkd::cuda::unavailable_reason() << "\n";
/// @endcode
///
/// A build with CUDA still runs on a machine without a GPU or driver: `available()` is then false
/// and `unavailable_reason()` says why (for instance "CUDA driver version is insufficient").
#include <string>

namespace gkd::cuda {

/// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int device_count() noexcept;
/// True when at least one CUDA device can be used.
inline bool available() noexcept { return device_count() > 0; }
/// Empty when a device is available; otherwise the runtime's explanation.
std::string unavailable_reason();
/// One line naming device `index`: name, compute capability, memory, multiprocessors.
std::string describe_device(int index = 0);

}  // namespace gkd::cuda
