// SPDX-License-Identifier: Apache-2.0
// Pinned staging for the multi-tensor tables: a ring of page-locked host buffers, each with an event
// recorded after its transfer, so that cudaMemcpyAsync is truly asynchronous and a buffer is
// rewritten only once the device has read it.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <mutex>

#include "check.hpp"
#include "optim/multi_tensor.hpp"

namespace gkd::cuda::multi_tensor {
namespace {

class PinnedStaging {
 public:
  void upload(void* device_dst, const void* host_src, std::size_t bytes) {
    if (bytes == 0) return;
    std::lock_guard lock(mutex_);
    Slot& slot = slots_[next_];
    next_ = (next_ + 1) % kSlots;
    if (slot.done != nullptr) GKD_CUDA_CHECK(cudaEventSynchronize(slot.done));  // its last transfer is over
    if (slot.capacity < bytes) {
      if (slot.host != nullptr) GKD_CUDA_CHECK(cudaFreeHost(slot.host));
      slot.host = nullptr;
      slot.capacity = 0;
      const std::size_t capacity = std::bit_ceil(std::max<std::size_t>(bytes, std::size_t{64} << 10));
      GKD_CUDA_CHECK(cudaHostAlloc(&slot.host, capacity, cudaHostAllocPortable));
      slot.capacity = capacity;
    }
    if (slot.done == nullptr) GKD_CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
    std::memcpy(slot.host, host_src, bytes);
    GKD_CUDA_CHECK(cudaMemcpyAsync(device_dst, slot.host, bytes, cudaMemcpyHostToDevice, nullptr));
    GKD_CUDA_CHECK(cudaEventRecord(slot.done, nullptr));
  }

 private:
  static constexpr std::size_t kSlots = 8;
  struct Slot {
    void* host = nullptr;
    std::size_t capacity = 0;
    cudaEvent_t done = nullptr;
  };
  std::mutex mutex_;
  std::array<Slot, kSlots> slots_{};
  std::size_t next_ = 0;
};

// Never destroyed, like the allocator: optimizers in static storage may step during program exit.
PinnedStaging& staging() {
  static auto* instance = new PinnedStaging;
  return *instance;
}

}  // namespace

void upload(void* device_dst, const void* host_src, std::size_t bytes) {
  staging().upload(device_dst, host_src, bytes);
}

}  // namespace gkd::cuda::multi_tensor
