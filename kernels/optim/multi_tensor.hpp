// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: the tables of a multi-tensor launch. The host lists the tensors (one entry
/// each, with its own scalars) and splits each into chunks of kChunk elements; one block handles one
/// chunk. Both tables (and each tensor's first chunk, for per-tensor reductions) go to the device in
/// one asynchronous copy through pinned staging memory, on the legacy default stream, so the block
/// can return to the caching allocator as soon as the launch is queued.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/cuda/memory.hpp"

namespace gkd::cuda::multi_tensor {

/// Elements per chunk (one block each) and threads per block.
inline constexpr std::int64_t kChunk = 1 << 14;
inline constexpr int kThreads = 256;

/// Chunk `index` (elements [index * kChunk, min((index + 1) * kChunk, numel))) of tensor `tensor`.
struct Chunk {
  std::uint32_t tensor;
  std::uint32_t index;
};

/// Copies `bytes` from host memory to device memory, queued on the legacy default stream: the host
/// bytes are copied into a pinned staging slot first, so `src` may be reused at once. A slot is
/// reused only after its previous transfer has finished.
void upload(void* device_dst, const void* host_src, std::size_t bytes);

/// The device tables of one launch: entries, chunks and each tensor's first chunk (n + 1 values).
template <class Entry>
class Tables {
 public:
  Tables(const std::vector<Entry>& entries, int device) {
    GKD_CHECK(entries.size() < std::numeric_limits<std::uint32_t>::max(), "cuda multi-tensor",
              entries.size() << " tensors in one launch");
    std::vector<Chunk> chunks;
    std::vector<std::int64_t> first(entries.size() + 1, 0);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      first[i] = static_cast<std::int64_t>(chunks.size());
      const std::int64_t n = entries[i].numel;
      GKD_CHECK(n >= 0, "cuda multi-tensor", "tensor " << i << " has " << n << " elements");
      const std::int64_t count = (n + kChunk - 1) / kChunk;
      for (std::int64_t c = 0; c < count; ++c)
        chunks.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(c)});
    }
    first.back() = static_cast<std::int64_t>(chunks.size());
    num_chunks_ = static_cast<std::int64_t>(chunks.size());
    GKD_CHECK(num_chunks_ <= std::numeric_limits<int>::max(), "cuda multi-tensor",
              num_chunks_ << " chunks exceed the grid limit");
    const std::size_t entry_bytes = aligned(entries.size() * sizeof(Entry));
    const std::size_t chunk_bytes = aligned(chunks.size() * sizeof(Chunk));
    const std::size_t first_bytes = first.size() * sizeof(std::int64_t);
    std::vector<std::byte> host(entry_bytes + chunk_bytes + first_bytes);
    if (!entries.empty()) std::memcpy(host.data(), entries.data(), entries.size() * sizeof(Entry));
    if (!chunks.empty()) std::memcpy(host.data() + entry_bytes, chunks.data(), chunks.size() * sizeof(Chunk));
    std::memcpy(host.data() + entry_bytes + chunk_bytes, first.data(), first_bytes);
    block_ = static_cast<std::byte*>(allocate(host.size(), device));
    try {
      upload(block_, host.data(), host.size());
    } catch (...) {
      deallocate(block_);
      throw;
    }
    entries_ = reinterpret_cast<const Entry*>(block_);
    chunks_ = reinterpret_cast<const Chunk*>(block_ + entry_bytes);
    first_ = reinterpret_cast<const std::int64_t*>(block_ + entry_bytes + chunk_bytes);
  }
  ~Tables() { deallocate(block_); }
  Tables(const Tables&) = delete;
  Tables& operator=(const Tables&) = delete;

  [[nodiscard]] const Entry* entries() const noexcept { return entries_; }
  [[nodiscard]] const Chunk* chunks() const noexcept { return chunks_; }
  /// first_chunk()[i] .. first_chunk()[i + 1]: the chunks of tensor i.
  [[nodiscard]] const std::int64_t* first_chunk() const noexcept { return first_; }
  [[nodiscard]] std::int64_t num_chunks() const noexcept { return num_chunks_; }

 private:
  static std::size_t aligned(std::size_t bytes) { return (bytes + 15) / 16 * 16; }

  std::byte* block_ = nullptr;
  const Entry* entries_ = nullptr;
  const Chunk* chunks_ = nullptr;
  const std::int64_t* first_ = nullptr;
  std::int64_t num_chunks_ = 0;
};

}  // namespace gkd::cuda::multi_tensor
