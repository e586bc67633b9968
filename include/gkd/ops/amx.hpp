// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Intel AMX for this process (internal, in gkd::detail): whether the tile products of
/// gkd/ops/amx_int8.hpp (similarity tiles) and gkd/ops/amx_bf16.hpp (gradient products) can run, the
/// one tile shape they use, and their scratch buffers.
///
/// They need x86-64 Linux, a CPU with AMX-TILE, AMX-INT8, AMX-BF16, AVX512-BF16, -F, -BW and -DQ (every
/// AMX CPU so far has all of them), and a kernel that grants the tile state (arch_prctl). amx_available()
/// says whether this process has them; the environment variable GKD_CPU_AMX=0 switches them off, and the
/// fused losses then run their float32 GEMMs. Everything AMX except amx_available() needs it to be true.
/// @code
///   if (gkd::detail::amx_available()) { /* pack operands, call the tile products */ }
/// @endcode
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string_view>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
/// Defined where gkd compiles the AMX products (they still need amx_available() at run time).
#define GKD_AMX 1
/// The instruction sets of the AMX functions (the rest of the build may target less): they are compiled
/// through this attribute, so that no global flag is needed.
#define GKD_AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512bf16,amx-tile,amx-int8,amx-bf16")))
#endif

namespace gkd::detail {

/// Whether this process can run the AMX products: x86-64 Linux; AMX-TILE, AMX-INT8, AMX-BF16,
/// AVX512-BF16, AVX512-F, AVX512-BW and AVX512-DQ in CPUID; the AVX-512 and tile state enabled by the OS (XCR0); the
/// tile state granted to the process (arch_prctl); and GKD_CPU_AMX not "0". Decided once per process.
inline bool amx_available() {
#ifdef GKD_AMX
  static const bool available = [] {
    if (const char* env = std::getenv("GKD_CPU_AMX"); env && std::string_view(env) == "0") return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    constexpr unsigned kAvx512F = 1u << 16, kAvx512Dq = 1u << 17, kAvx512Bw = 1u << 30;
    constexpr unsigned kAmxBf16 = 1u << 22, kAmxTile = 1u << 24, kAmxInt8 = 1u << 25;
    if ((b & (kAvx512F | kAvx512Dq | kAvx512Bw)) != (kAvx512F | kAvx512Dq | kAvx512Bw) ||
        (d & (kAmxBf16 | kAmxTile | kAmxInt8)) != (kAmxBf16 | kAmxTile | kAmxInt8))
      return false;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return false;  // AVX512-BF16
    unsigned xcr0 = 0, xcr0_high = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
    constexpr unsigned kAvx512State = 0xe6u, kTileState = 3u << 17;  // SSE, AVX, opmask, ZMM; XTILECFG, XTILEDATA
    if ((xcr0 & (kAvx512State | kTileState)) != (kAvx512State | kTileState)) return false;
    constexpr long kRequestPermission = 0x1023, kTileData = 18;  // ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
  }();
  return available;
#else
  return false;
#endif
}

#ifdef GKD_AMX

/// Configures all eight tile registers as 16 rows of 64 bytes (the only shape gkd uses); pair it with
/// _tile_release() when the products are done.
GKD_AMX_TARGET inline void configure_amx_tiles() {
  struct alignas(64) Config {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t bytes_per_row[16] = {};
    std::uint8_t rows[16] = {};
  } config;
  for (int t = 0; t < 8; ++t) config.bytes_per_row[t] = 64, config.rows[t] = 16;
  _tile_loadconfig(&config);
  __asm__ volatile("" ::: "memory");  // the tile loads read memory that the compiler does not see them read
}

/// min(16, count) floats from x, zeros after them (count ≤ 0: none read).
GKD_AMX_TARGET inline __m512 amx_load16(const float* x, std::int64_t count) {
  if (count >= 16) return _mm512_loadu_ps(x);
  return count > 0 ? _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), x) : _mm512_setzero_ps();
}

/// A grow-only, 64-byte-aligned buffer: per-thread scratch for the products' outputs.
template <class T>
class AmxScratch {
 public:
  T* get(std::size_t count) {
    if (count > size_) {
      data_.reset(static_cast<T*>(::operator new(count * sizeof(T), std::align_val_t{64})));
      size_ = count;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(T* p) const noexcept { ::operator delete(p, std::align_val_t{64}); }
  };
  std::unique_ptr<T, Free> data_;
  std::size_t size_ = 0;
};

#endif  // GKD_AMX

}  // namespace gkd::detail
