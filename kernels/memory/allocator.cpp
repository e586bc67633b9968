// SPDX-License-Identifier: Apache-2.0
// The caching device allocator, host/device copies, streams and events (see gkd/cuda/memory.hpp).
#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "check.hpp"
#include "gkd/cuda/memory.hpp"
#include "gkd/cuda/runtime.hpp"

namespace gkd::cuda {
namespace {

constexpr std::size_t kSmallLimit = std::size_t(1) << 20;  // 1 MiB
constexpr std::size_t kSmallRound = 512;
constexpr std::size_t kLargeRound = std::size_t(2) << 20;  // 2 MiB

std::size_t bucket_size(std::size_t bytes) {
  const std::size_t round = bytes < kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + round - 1) / round * round;
}

struct Block {
  std::size_t size;
  int device;
};

class CachingAllocator {
 public:
  void* allocate(std::size_t bytes, int device) {
    if (bytes == 0) return nullptr;
    const std::size_t size = bucket_size(bytes);
    std::lock_guard lock(mutex_);
    auto& free_list = free_[device];
    if (auto it = free_list.find(size); it != free_list.end()) {
      void* ptr = it->second;
      free_list.erase(it);
      stats_.cached -= size;
      return hand_out(ptr, size, device);
    }
    const int count = device_count();
    GKD_CHECK(count > 0, "cuda::allocate", "cannot allocate " << bytes << " bytes on cuda:" << device << ": "
                                                             << unavailable_reason());
    GKD_CHECK(device >= 0 && device < count, "cuda::allocate",
              "device cuda:" << device << " does not exist (" << count << " devices)");
    GKD_CUDA_CHECK(cudaSetDevice(device));
    void* ptr = nullptr;
    if (cudaMalloc(&ptr, size) != cudaSuccess) {
      (void)cudaGetLastError();
      release_cached_locked();
      const cudaError_t status = cudaMalloc(&ptr, size);
      if (status != cudaSuccess) {
        (void)cudaGetLastError();
        GKD_FAIL("cuda::allocate", "cudaMalloc of " << size << " bytes on cuda:" << device
                                                    << " failed: " << cudaGetErrorString(status) << " ("
                                                    << stats_.in_use << " bytes in use by gkd)");
      }
    }
    ++stats_.device_allocations;
    stats_.reserved += size;
    return hand_out(ptr, size, device);
  }

  void deallocate(void* ptr) noexcept {
    if (ptr == nullptr) return;
    std::lock_guard lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;  // not ours: nothing sensible to do in a noexcept path
    const Block block = it->second;
    live_.erase(it);
    stats_.in_use -= block.size;
    stats_.cached += block.size;
    free_[block.device].emplace(block.size, ptr);
  }

  void empty_cache() {
    std::lock_guard lock(mutex_);
    release_cached_locked();
  }

  MemoryStats stats() {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard lock(mutex_);
    stats_.peak_in_use = stats_.in_use;
  }

 private:
  void* hand_out(void* ptr, std::size_t size, int device) {
    live_.emplace(ptr, Block{size, device});
    stats_.in_use += size;
    stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
    return ptr;
  }
  void release_cached_locked() {
    // Pending kernels may still use a cached block that was freed on the host: wait for them first.
    (void)cudaDeviceSynchronize();
    for (auto& [device, list] : free_) {
      (void)cudaSetDevice(device);
      for (auto& [size, ptr] : list) {
        (void)cudaFree(ptr);
        stats_.cached -= size;
        stats_.reserved -= size;
      }
      list.clear();
    }
    (void)cudaGetLastError();
  }

  std::mutex mutex_;
  std::unordered_map<int, std::multimap<std::size_t, void*>> free_;
  std::unordered_map<void*, Block> live_;
  MemoryStats stats_;
};

// Never destroyed: tensors in static storage may return blocks during program exit.
CachingAllocator& allocator() {
  static CachingAllocator* instance = new CachingAllocator();
  return *instance;
}

}  // namespace

void* allocate(std::size_t bytes, int device) { return allocator().allocate(bytes, device); }
void deallocate(void* ptr) noexcept { allocator().deallocate(ptr); }
MemoryStats memory_stats() { return allocator().stats(); }
void reset_peak() { allocator().reset_peak(); }
void empty_cache() { allocator().empty_cache(); }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) {
  if (bytes == 0) return;
  cudaMemcpyKind kind = cudaMemcpyDeviceToDevice;
  if (dst_device.is_cpu() && src_device.is_cpu()) kind = cudaMemcpyHostToHost;
  if (dst_device.is_cpu() && src_device.is_cuda()) kind = cudaMemcpyDeviceToHost;
  if (dst_device.is_cuda() && src_device.is_cpu()) kind = cudaMemcpyHostToDevice;
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index) {
    GKD_CUDA_CHECK(cudaMemcpyPeer(dst, dst_device.index, src, src_device.index, bytes));
    return;
  }
  // cudaMemcpy on the legacy default stream: ordered after every queued gkd kernel, and the host
  // waits for device-to-host copies to finish.
  GKD_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

void synchronize() { GKD_CUDA_CHECK(cudaDeviceSynchronize()); }

Stream::Stream() {
  cudaStream_t stream = nullptr;
  GKD_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  handle_ = stream;
}
Stream::~Stream() { (void)cudaStreamDestroy(static_cast<cudaStream_t>(handle_)); }
void Stream::synchronize() const { GKD_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_))); }

Event::Event() {
  cudaEvent_t event = nullptr;
  GKD_CUDA_CHECK(cudaEventCreate(&event));
  handle_ = event;
}
Event::~Event() { (void)cudaEventDestroy(static_cast<cudaEvent_t>(handle_)); }
void Event::record(const Stream* stream) {
  GKD_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_),
                                 stream ? static_cast<cudaStream_t>(stream->handle()) : nullptr));
}
void Event::synchronize() const { GKD_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_))); }
float Event::elapsed_ms(const Event& start) const {
  synchronize();
  float ms = 0;
  GKD_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle_),
                                      static_cast<cudaEvent_t>(handle_)));
  return ms;
}

}  // namespace gkd::cuda
