// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Device memory of the `gkd::cuda` library: a caching allocator, host/device copies, raw strided
/// copy/accumulate primitives that the tensor core dispatches to, and RAII streams and events.
/// Including this header needs neither nvcc nor CUDA headers; calling it needs `gkd::cuda` linked.
///
/// The allocator rounds requests up to a bucket (512 B multiples below 1 MiB, 2 MiB multiples above)
/// and keeps freed blocks in per-device free lists, so a steady-state training loop calls cudaMalloc
/// only in its first iteration. All gkd kernels run on the legacy default stream, so a block freed on
/// the host may be reused at once (stream order protects pending kernels). When cudaMalloc fails the
/// cache is emptied and the allocation retried once before a gkd::Error reports the sizes.
///
/// How ops reach the GPU (dispatch): header-only code never names a `gkd::cuda` symbol unless the
/// macro `GKD_HAS_CUDA` is set, which linking `gkd::cuda` defines (PUBLIC). Without it, a device
/// tensor given to an op throws "… is on cuda:0 but this program is not linked with gkd::cuda".
///
/// @code
///   auto x = gkd::Tensor<float>::ones({1024}).cuda();   // 4 KiB from the cache
///   auto stats = gkd::cuda::memory_stats();             // in_use >= 4096
///   gkd::cuda::Event start, stop;  start.record(); ...; stop.record(); float ms = stop.elapsed_ms(start);
/// @endcode
#include <cstddef>
#include <cstdint>

#include "gkd/core/device.hpp"
#include "gkd/core/dtype.hpp"
#include "gkd/core/strided.hpp"

namespace gkd::cuda {

// ---- caching allocator --------------------------------------------------------------------------

/// `bytes` of device memory on device `device` (a cached block when one of the bucket size is free).
/// Returns nullptr for 0 bytes. Throws gkd::Error when no GPU is usable or memory is exhausted.
void* allocate(std::size_t bytes, int device = 0);
/// Returns a block from `allocate` to the cache (never to the driver); nullptr is ignored.
void deallocate(void* ptr) noexcept;

/// Byte counts of the caching allocator, summed over devices.
struct MemoryStats {
  std::size_t in_use = 0;       ///< bytes in blocks handed out (bucket sizes)
  std::size_t peak_in_use = 0;  ///< maximum of in_use since start or reset_peak()
  std::size_t cached = 0;       ///< bytes in free blocks kept for reuse
  std::size_t reserved = 0;     ///< in_use + cached: what the driver has given us
  std::size_t device_allocations = 0;  ///< number of cudaMalloc calls so far
};
MemoryStats memory_stats();
/// Sets peak_in_use to the current in_use.
void reset_peak();
/// Returns every cached (free) block to the driver.
void empty_cache();

// ---- copies and raw primitives ------------------------------------------------------------------

/// Copies `bytes` between any two of host and device memory; returns after the copy is complete.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes);
/// Waits for all work on the current device.
void synchronize();

/// Largest rank of a strided primitive.
inline constexpr int kMaxRank = 8;
/// Shape and two stride sets (destination, source) in elements, for strided kernels.
struct StridedPair {
  int rank = 0;
  std::int64_t shape[kMaxRank] = {};
  std::int64_t dst_stride[kMaxRank] = {};
  std::int64_t src_stride[kMaxRank] = {};
};

/// The same element pairs with size-1 dims dropped and neighbouring dims merged where they are
/// contiguous in both the destination and the source (host code: kernels index fewer dims, and a
/// fully contiguous pair becomes rank 1 with unit strides). Rank 0 means a single element.
/// Example: shape {2, 3, 4} with both strides {12, 4, 1} merges to shape {24}, strides {1}.
inline StridedPair merge_dims(const StridedPair& layout) {
  const Shape shape(layout.shape, layout.shape + layout.rank);
  const Strides dst(layout.dst_stride, layout.dst_stride + layout.rank);
  const Strides src(layout.src_stride, layout.src_stride + layout.rank);
  const gkd::detail::MergedLayout<2> merged(shape, {&dst, &src});
  StridedPair m;
  if (numel(merged.shape) == 1) return m;  // rank 0: a single element
  for (std::size_t d = 0; d < merged.shape.size(); ++d) {
    m.shape[m.rank] = merged.shape[d];
    m.dst_stride[m.rank] = merged.strides[0][d];
    m.src_stride[m.rank++] = merged.strides[1][d];
  }
  return m;
}

/// dst[0..n) = value on the device.
template <Real T>
void fill(T* dst, std::int64_t n, T value);
/// dst[layout.dst] = src[layout.src] for every index of layout.shape (device pointers).
template <Real T>
void copy_strided(T* dst, const T* src, const StridedPair& layout);
/// dst[layout.dst] += src[layout.src]. dst strides may be 0 (summing broadcast dims: the gradient of
/// broadcasting, sum over dims); such sums run as a segmented reduction in a fixed order, so they are
/// deterministic. Other dst strides must address distinct elements.
template <Real T>
void accumulate_strided(T* dst, const T* src, const StridedPair& layout);

// ---- streams and events ------------------------------------------------------------------------

/// An owned non-blocking CUDA stream (gkd's own kernels use the legacy default stream).
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  /// Waits until all work queued on this stream is done.
  void synchronize() const;
  /// The cudaStream_t, as an opaque pointer.
  [[nodiscard]] void* handle() const noexcept { return handle_; }

 private:
  void* handle_ = nullptr;
};

/// An owned CUDA event with timing enabled.
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  /// Records the event on `stream` (nullptr: the legacy default stream).
  void record(const Stream* stream = nullptr);
  /// Waits until the recorded work is done.
  void synchronize() const;
  /// Milliseconds from `start` to this event (both recorded; waits for this one).
  [[nodiscard]] float elapsed_ms(const Event& start) const;
  [[nodiscard]] void* handle() const noexcept { return handle_; }

 private:
  void* handle_ = nullptr;
};

}  // namespace gkd::cuda
