// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: a shared, typed block of device memory from the caching allocator, for the
/// integer and weight tables that ops keep between forward and backward (argmax indices, resize taps).
#include <cstdint>
#include <memory>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/cuda/memory.hpp"

namespace gkd::cuda {

template <class E>
class DeviceArray {
 public:
  DeviceArray() = default;
  /// `count` uninitialised elements on `device`.
  DeviceArray(std::int64_t count, Device device) : count_(count) {
    GKD_CHECK(count >= 0 && device.is_cuda(), "cuda", "device array of " << count << " elements on " << device.str());
    data_ = std::shared_ptr<E>(static_cast<E*>(allocate(static_cast<std::size_t>(count) * sizeof(E), device.index)),
                               [](E* p) { deallocate(p); });
  }
  /// A device copy of `host`.
  DeviceArray(const std::vector<E>& host, Device device) : DeviceArray(static_cast<std::int64_t>(host.size()), device) {
    if (!host.empty()) copy_bytes(data_.get(), device, host.data(), kCPU, host.size() * sizeof(E));
  }
  [[nodiscard]] E* data() const noexcept { return data_.get(); }
  [[nodiscard]] std::int64_t size() const noexcept { return count_; }

 private:
  std::shared_ptr<E> data_;
  std::int64_t count_ = 0;
};

}  // namespace gkd::cuda
