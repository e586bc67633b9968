// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The caching host allocator behind every CPU Storage. A training step frees and allocates the same
/// large activations and gradients step after step; from the system allocator each such block is a
/// fresh mmap whose pages the kernel faults in and zeroes on first touch (measured: 19% of a UnetSKA2
/// teacher step on one core). Freed blocks of 256 KiB or more are instead kept, by size class (sizes
/// rounded up to 1/8 of their power of two: at most 12.5% waste), and handed out again for a request
/// of the same class.
///
/// Footprint bound: live and cached memory together never exceed twice the peak of live memory (sizes
/// rounded up to classes). A miss that would pass that bound first returns the least recently cached
/// blocks to the system. Twice, because a loop holds at most one block per class at once where the
/// system allocator would share memory between classes: a MobileNetV2-UNet training step runs without
/// misses at 1.26x its live peak (266 against 211 MiB), while with the bound at 1x it kept missing and
/// page-faulting (40 misses and 6,000 faults per step). An allocation that fails empties the cache and
/// retries once.
/// Debugging: with GKD_HOST_CACHE_FILL_NAN=1 in the environment every block of 256 KiB or more is
/// filled with NaN bytes when handed out (fresh from the system, whose pages are zero, or reused), so a
/// read of tensor memory before its first write shows up in results (CI runs the whole suite so). Under
/// AddressSanitizer that is the default, and cached blocks are poisoned, so a use after free is still
/// reported. The cache is on unless the environment sets GKD_HOST_CACHE=0; set_host_cache_enabled
/// overrides.
/// Thread-safe.
/// @code
///   auto t = gkd::Tensor<float>::empty({64, 1024, 1024});    // 256 MiB: a miss, from the system
///   t = {};                                                  // kept in the cache
///   auto u = gkd::Tensor<float>::empty({64, 1024, 1024});    // the same block again, no page faults
///   gkd::empty_host_cache();                                 // gives cached blocks back to the system
/// @endcode
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define GKD_DETAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GKD_DETAIL_ASAN 1
#endif
#endif
#ifdef GKD_DETAIL_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace gkd {

/// Counters of the host cache (since the start of the process).
struct HostCacheStats {
  std::size_t cached_bytes = 0;   ///< bytes held for reuse now
  std::size_t cached_blocks = 0;  ///< blocks held for reuse now
  std::size_t live_bytes = 0;     ///< cacheable blocks (256 KiB or more) in use now
  std::size_t peak_live_bytes = 0;  ///< the most live_bytes has been
  std::size_t hits = 0;           ///< allocations served from the cache
  std::size_t misses = 0;         ///< cacheable allocations that went to the system
};

namespace detail {

class HostCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t{256} << 10;  ///< smaller blocks bypass the cache
  static constexpr std::align_val_t kAlign{64};
  /// Live and cached memory together stay within this multiple of the peak of live memory.
  static constexpr std::size_t kPeakMultiple = 2;

  /// The process-wide cache; never destroyed, so tensors released during static destruction still work.
  static HostCache& instance() {
    static HostCache* cache = new HostCache();
    return *cache;
  }

  /// `bytes` rounded up to its size class (unchanged below kMinBytes).
  static std::size_t class_bytes(std::size_t bytes) {
    if (bytes < kMinBytes) return bytes;
    std::size_t top = kMinBytes;
    while (top * 2 <= bytes) top *= 2;
    const std::size_t step = top / 8;
    return (bytes + step - 1) / step * step;
  }

  /// A 64-byte-aligned block of class_bytes(bytes) bytes; release it with release(p, bytes).
  void* allocate(std::size_t bytes) {
    const std::size_t size = class_bytes(bytes);
    if (size < kMinBytes) return ::operator new(size, kAlign);
    void* reused = nullptr;
    {
      std::lock_guard lock(mutex_);
      live_bytes_ += size;
      peak_live_ = std::max(peak_live_, live_bytes_);
      if (enabled_) {
        if (auto it = free_.find(size); it != free_.end() && !it->second.empty()) {
          const auto block = it->second.back();  // the most recently cached block of the class
          it->second.pop_back();
          reused = block->ptr;
          lru_.erase(block);
          cached_bytes_ -= size;
          ++hits_;
#ifdef GKD_DETAIL_ASAN
          ASAN_UNPOISON_MEMORY_REGION(reused, size);
#endif
        } else {
          ++misses_;
          const std::size_t limit = kPeakMultiple * peak_live_;
          if (live_bytes_ + cached_bytes_ > limit) evict_locked(live_bytes_ + cached_bytes_ - limit);
        }
      }
    }
    if (reused) {
      if (fill_nan_) std::memset(reused, 0xff, size);
      return reused;
    }
    try {
      return fresh(size);
    } catch (const std::bad_alloc&) {
      empty();
      try {
        return fresh(size);
      } catch (const std::bad_alloc&) {
        std::lock_guard lock(mutex_);
        live_bytes_ -= size;
        throw;
      }
    }
  }

  /// Returns a block from allocate(bytes) to the cache (or to the system when too small or disabled).
  void release(void* p, std::size_t bytes) noexcept {
    const std::size_t size = class_bytes(bytes);
    if (size >= kMinBytes) {
      std::lock_guard lock(mutex_);
      live_bytes_ -= size;
      if (enabled_) {
        lru_.push_back({p, size});
        free_[size].push_back(std::prev(lru_.end()));
        cached_bytes_ += size;
#ifdef GKD_DETAIL_ASAN
        ASAN_POISON_MEMORY_REGION(p, size);
#endif
        return;
      }
    }
    ::operator delete(p, kAlign);
  }

  /// Gives every cached block back to the system.
  void empty() noexcept {
    std::lock_guard lock(mutex_);
    evict_locked(cached_bytes_);
  }

  void set_enabled(bool on) {
    if (!on) empty();
    std::lock_guard lock(mutex_);
    enabled_ = on;
  }

  /// Whether blocks are NaN-filled when handed out (GKD_HOST_CACHE_FILL_NAN, or AddressSanitizer).
  [[nodiscard]] bool fills_nan() const { return fill_nan_; }

  [[nodiscard]] HostCacheStats stats() const {
    std::lock_guard lock(mutex_);
    return {.cached_bytes = cached_bytes_, .cached_blocks = lru_.size(), .live_bytes = live_bytes_,
            .peak_live_bytes = peak_live_, .hits = hits_, .misses = misses_};
  }

 private:
  struct Block {
    void* ptr;
    std::size_t bytes;
  };

  HostCache() {
    const char* env = std::getenv("GKD_HOST_CACHE");
    enabled_ = !(env && std::strcmp(env, "0") == 0);
    const char* fill = std::getenv("GKD_HOST_CACHE_FILL_NAN");
    fill_nan_ = fill ? std::strcmp(fill, "0") != 0 : fill_nan_;
  }

  /// A block from the system, NaN-filled when fill_nan_.
  void* fresh(std::size_t size) const {
    void* p = ::operator new(size, kAlign);
    if (fill_nan_) std::memset(p, 0xff, size);
    return p;
  }

  /// Frees the least recently cached blocks until `bytes` are freed or the cache is empty.
  void evict_locked(std::size_t bytes) noexcept {
    std::size_t freed = 0;
    while (freed < bytes && !lru_.empty()) {
      const Block b = lru_.front();
      auto& list = free_[b.bytes];
      list.pop_front();  // the oldest block of its class is the front of its list
      lru_.pop_front();
      cached_bytes_ -= b.bytes;
      freed += b.bytes;
#ifdef GKD_DETAIL_ASAN
      ASAN_UNPOISON_MEMORY_REGION(b.ptr, b.bytes);
#endif
      ::operator delete(b.ptr, kAlign);
    }
  }

  mutable std::mutex mutex_;
  bool enabled_ = true;
#ifdef GKD_DETAIL_ASAN
  bool fill_nan_ = true;
#else
  bool fill_nan_ = false;
#endif
  std::list<Block> lru_;                                                  ///< oldest first
  std::map<std::size_t, std::deque<std::list<Block>::iterator>> free_;  ///< by class, oldest first
  std::size_t cached_bytes_ = 0;
  std::size_t live_bytes_ = 0;  ///< cacheable blocks handed out and not yet released
  std::size_t peak_live_ = 0;
  std::size_t hits_ = 0, misses_ = 0;
};

}  // namespace detail

/// The host cache's counters.
inline HostCacheStats host_cache_stats() { return detail::HostCache::instance().stats(); }

/// Gives every cached host block back to the system (live tensors are not affected).
inline void empty_host_cache() { detail::HostCache::instance().empty(); }

/// Turns the host cache on or off for later allocations (off also empties it). The default is on,
/// unless the environment sets GKD_HOST_CACHE=0.
inline void set_host_cache_enabled(bool on) { detail::HostCache::instance().set_enabled(on); }

}  // namespace gkd
