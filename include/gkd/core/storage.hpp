// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// A reference-counted, 64-byte-aligned buffer of elements on one device. Tensors are views
/// (shape, strides, offset) over a shared Storage.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>

#include "gkd/core/device.hpp"
#include "gkd/core/dtype.hpp"
#include "gkd/core/error.hpp"
#include "gkd/core/host_cache.hpp"

namespace gkd {

/// A flat buffer of `size()` elements of T on `device()`; never copied implicitly.
template <Real T>
class Storage {
 public:
  /// Allocates `count` uninitialised elements on the host, aligned to 64 bytes for AVX-512, through
  /// the host cache (gkd/core/host_cache.hpp).
  explicit Storage(std::size_t count) : size_(count), device_(kCPU) {
    if (count == 0) return;
    const std::size_t bytes = count * sizeof(T);
    data_ = std::unique_ptr<T, std::function<void(T*)>>(
        static_cast<T*>(detail::HostCache::instance().allocate(bytes)),
        [bytes](T* q) { detail::HostCache::instance().release(q, bytes); });
  }
  /// Adopts memory allocated elsewhere (a device allocator, a memory-mapped file); `release`
  /// frees it when the last tensor that uses it goes away.
  Storage(T* data, std::size_t count, Device device, std::function<void(T*)> release)
      : data_(data, std::move(release)), size_(count), device_(device) {}

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  [[nodiscard]] T* data() const noexcept { return data_.get(); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] Device device() const noexcept { return device_; }

 private:
  std::unique_ptr<T, std::function<void(T*)>> data_{nullptr, [](T*) {}};
  std::size_t size_ = 0;
  Device device_;
};

}  // namespace gkd
