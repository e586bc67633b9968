// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Float32-accurate matrix products on Intel AMX tiles (internal, in gkd::detail), for the similarity
/// tiles of the fused distillation losses. Each float is split into three bfloat16 parts,
/// x = hi + mid + lo with |x − hi − mid − lo| ≤ 2⁻²⁴|x| (24 significant bits, as many as float32 has),
/// and a product accumulates the six part products above 2⁻²⁴|x||y| (lo·hi, mid·hi, mid·mid, hi·mid,
/// hi·lo, hi·hi) in float32 with TDPBF16PS, whose bfloat16 products are exact: the error is that of a
/// float32 accumulation (tests/ops/test_amx_bf16.cpp). Two parts and three products would be twice as fast
/// but only 16 bits accurate (1e-5 on the similarity of a 4-channel unit row with itself).
///
/// Operands are packed once (AmxOperand) into tiles of 16 rows (or columns) by 32 k, zero-padded to
/// multiples of 32 in both dimensions; tile (r / 16, k / 32) starts at ((r / 16) · kp / 32 + k / 32) · 512
/// (kp: K padded), so that one tile is 1 KiB of contiguous memory:
///   rows     the left operand A(i, k), element (i % 16) · 32 + k % 32 of its tile;
///   columns  the right operand of x·yᵀ, B(k, j) = y[j][k], in the VNNI order that TDPBF16PS reads
///            (element (k % 32) / 2 · 32 + (j % 16) · 2 + k % 2: pairs along k);
///   pairs    the right operand of h·y, B(k, j) = y[k][j] (the contraction runs over y's rows), same order.
///
/// The products need x86-64 Linux, a CPU with AMX-TILE, AMX-BF16 and AVX512-BF16 (which packs), and a
/// kernel that grants the tile state (arch_prctl); amx_bf16_available() says whether this process has
/// them, and the environment variable GKD_CPU_AMX=0 switches them off (callers then run their float32
/// GEMMs). Everything here except amx_bf16_available() needs it to be true.
/// @code
///   // c[32 x 32] = x[32 x 64] · y[32 x 64]ᵀ, all row-major, where amx_bf16_available()
///   const auto a = gkd::detail::AmxOperand::rows(x, 32, 64, 64);
///   const auto b = gkd::detail::AmxOperand::columns(y, 32, 64, 64);
///   gkd::detail::amx_bf16x6_gemm(a.tiles(0, 0), b.tiles(0, 0), 1, 1, a.k_steps(), c, 32);
/// @endcode
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

#include "gkd/core/host_cache.hpp"

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
/// Defined where gkd compiles the AMX products (they still need amx_bf16_available() at run time).
#define GKD_AMX_BF16 1
/// The instruction sets of the functions below (the rest of the build may target less).
#define GKD_AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))
#endif

namespace gkd::detail {

/// Whether this process can run the AMX products: x86-64 Linux, AMX-TILE, AMX-BF16, AVX512-BF16 and
/// AVX512-BW in CPUID, the AVX-512 and tile state enabled by the OS (XCR0) and the tile state granted to
/// the process (arch_prctl), and GKD_CPU_AMX not "0". Decided once per process.
inline bool amx_bf16_available() {
#ifdef GKD_AMX_BF16
  static const bool available = [] {
    if (const char* env = std::getenv("GKD_CPU_AMX"); env && std::string_view(env) == "0") return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    constexpr unsigned kAvx512F = 1u << 16, kAvx512Bw = 1u << 30, kAmxBf16 = 1u << 22, kAmxTile = 1u << 24;
    if ((b & (kAvx512F | kAvx512Bw)) != (kAvx512F | kAvx512Bw) || (d & (kAmxBf16 | kAmxTile)) != (kAmxBf16 | kAmxTile))
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

#ifdef GKD_AMX_BF16

/// The tiles of one operand from a given tile on: part p's tile at part[p]; the next 16 rows (columns)
/// are `block_stride` elements on, the next 32 k 512 elements on.
struct AmxTiles {
  const std::uint16_t* part[3];
  std::int64_t block_stride;
};

/// The bfloat16 parts of 16 floats (round to nearest even; see the file comment). Differences are exact
/// in float; parts below bfloat16's normal range become zero, as TDPBF16PS would read them anyway.
GKD_AMX_TARGET inline void split_bf16(__m512 x, __m256i part[3]) {
  for (int p = 0; p < 3; ++p) {
    part[p] = (__m256i)_mm512_cvtneps_pbh(x);
    x = _mm512_sub_ps(x, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(part[p]), 16)));
  }
}

/// A float matrix packed for amx_bf16x6_gemm (see the file comment), as three bfloat16 planes in one
/// 64-byte-aligned block (from the host cache, so repeated packs reuse their pages). Move-only.
class AmxOperand {
 public:
  AmxOperand() = default;

  /// Left operand A(i, k) = x[i · ld + k], i < m, k < depth.
  static AmxOperand rows(const float* x, std::int64_t m, std::int64_t depth, std::int64_t ld) {
    AmxOperand op;
    op.assign_rows(m, depth, 0, [&](std::int64_t i) { return x + i * ld; });
    return op;
  }
  /// Left operand A(i, k) = row(i)[k − shift] for shift ≤ k < shift + depth and 0 elsewhere, i < m, into
  /// this operand's storage when it is large enough (scratch operands reused across calls).
  template <class Row>
  void assign_rows(std::int64_t m, std::int64_t depth, std::int64_t shift, Row&& row) {
    reserve(m, shift + depth);
#pragma omp parallel for if (m * depth > (1 << 16))
    for (std::int64_t i = 0; i < m; ++i) pack_row(i, row(i), shift, depth);
  }
  /// Right operand of x·yᵀ: B(k, j) = y[j · ld + k], j < n, k < depth.
  static AmxOperand columns(const float* y, std::int64_t n, std::int64_t depth, std::int64_t ld) {
    AmxOperand op;
    op.reserve(n, depth);
#pragma omp parallel for if (n * depth > (1 << 16))
    for (std::int64_t j = 0; j < n; ++j) op.pack_column(j, y + j * ld, depth);
    return op;
  }
  /// Right operand of h·y: B(k, j) = y[k · ld + j], k < depth, j < n.
  static AmxOperand pairs(const float* y, std::int64_t depth, std::int64_t n, std::int64_t ld) {
    AmxOperand op;
    op.reserve(n, depth);
#pragma omp parallel for if (n * depth > (1 << 16))
    for (std::int64_t k = 0; k < depth; k += 2)
      op.pack_pair(k, y + k * ld, k + 1 < depth ? y + (k + 1) * ld : nullptr, n);
    return op;
  }

  [[nodiscard]] bool empty() const { return !block_; }
  /// K padded to 32, in steps of 32.
  [[nodiscard]] std::int64_t k_steps() const { return kp_ / 32; }
  /// The tiles from row (column) r, a multiple of 16, and k step s.
  [[nodiscard]] AmxTiles tiles(std::int64_t r, std::int64_t s) const {
    const std::int64_t at = tile(r, s * 32);
    return {{plane(0) + at, plane(1) + at, plane(2) + at}, k_steps() * 512};
  }

 private:
  struct Release {
    std::size_t bytes;
    void operator()(void* p) const noexcept { HostCache::instance().release(p, bytes); }
  };

  static std::int64_t round32(std::int64_t v) { return (v + 31) / 32 * 32; }
  /// Where the tile of row (column) r and depth k starts.
  [[nodiscard]] std::int64_t tile(std::int64_t r, std::int64_t k) const { return ((r / 16) * k_steps() + k / 32) * 512; }
  [[nodiscard]] std::uint16_t* plane(int part) const {
    return static_cast<std::uint16_t*>(block_.get()) + part * outer_ * kp_;
  }

  /// Storage for `outer` rows (columns) by `depth`, zeroed where the packs do not write (the padding).
  void reserve(std::int64_t outer, std::int64_t depth) {
    const std::int64_t outer_padded = round32(outer), kp = round32(depth);
    const std::size_t bytes = std::size_t(3 * outer_padded * kp) * sizeof(std::uint16_t);
    if (!block_ || block_.get_deleter().bytes < bytes)
      block_ = std::unique_ptr<void, Release>(HostCache::instance().allocate(bytes), Release{bytes});
    outer_ = outer_padded, kp_ = kp;
    if (outer_padded != outer || kp != depth) std::memset(block_.get(), 0, bytes);
  }

  /// Row i of a left operand from x[k − shift] (shift ≤ k < shift + depth), zero elsewhere up to kp.
  GKD_AMX_TARGET void pack_row(std::int64_t i, const float* x, std::int64_t shift, std::int64_t depth) {
    for (std::int64_t k0 = 0; k0 < kp_; k0 += 16) {
      const std::int64_t from = std::max<std::int64_t>(k0, shift), to = std::min(k0 + 16, shift + depth);
      __m512 v = _mm512_setzero_ps();
      if (to - from == 16) {
        v = _mm512_loadu_ps(x + (from - shift));
      } else if (from < to) {  // lanes from − k0 … to − k0 − 1 read x[from − shift] onwards
        const __mmask16 lanes = static_cast<__mmask16>(((1u << (to - from)) - 1) << (from - k0));
        v = _mm512_maskz_expandloadu_ps(lanes, x + (from - shift));
      }
      __m256i part[3];
      split_bf16(v, part);
      const std::int64_t at = tile(i, k0) + (i % 16) * 32 + k0 % 32;
      for (int p = 0; p < 3; ++p) _mm256_storeu_si256(reinterpret_cast<__m256i*>(plane(p) + at), part[p]);
    }
  }
  /// Column j of a right operand from y[k] (k < depth): 16 k pairs per tile, 64 bytes apart.
  GKD_AMX_TARGET void pack_column(std::int64_t j, const float* y, std::int64_t depth) {
    const __m512i rows = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224,
                                           240);  // pair q → 32-bit word 16 q
    for (std::int64_t k0 = 0; k0 < depth; k0 += 32) {
      __m256i lo[3], hi[3];
      split_bf16(load(y + k0, depth - k0), lo);
      split_bf16(load(y + k0 + 16, depth - k0 - 16), hi);
      const std::int64_t at = tile(j, k0) + (j % 16) * 2;
      for (int p = 0; p < 3; ++p)
        _mm512_i32scatter_epi32(plane(p) + at, rows, _mm512_inserti64x4(_mm512_castsi256_si512(lo[p]), hi[p], 1), 4);
    }
  }
  /// Rows k and k + 1 of a pairs operand from y0[j] and y1[j] (null: zero), j < n: one 64-byte tile row
  /// per 16 columns.
  GKD_AMX_TARGET void pack_pair(std::int64_t k, const float* y0, const float* y1, std::int64_t n) {
    for (std::int64_t j0 = 0; j0 < n; j0 += 16) {
      __m256i first[3], second[3];
      split_bf16(load(y0 + j0, n - j0), first);
      split_bf16(y1 ? load(y1 + j0, n - j0) : _mm512_setzero_ps(), second);
      const std::int64_t at = tile(j0, k) + (k % 32) / 2 * 32;
      for (int p = 0; p < 3; ++p) {
        const __m512i words =
            _mm512_or_si512(_mm512_cvtepu16_epi32(first[p]), _mm512_slli_epi32(_mm512_cvtepu16_epi32(second[p]), 16));
        _mm512_storeu_si512(plane(p) + at, words);
      }
    }
  }
  /// min(16, count) floats from x, zeros after them.
  GKD_AMX_TARGET static __m512 load(const float* x, std::int64_t count) {
    if (count >= 16) return _mm512_loadu_ps(x);
    return count > 0 ? _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), x) : _mm512_setzero_ps();
  }

  std::unique_ptr<void, Release> block_{nullptr, Release{0}};
  std::int64_t outer_ = 0, kp_ = 0;  // padded rows (columns), padded K
};

/// A grow-only, 64-byte-aligned float buffer: per-thread scratch for the products' padded outputs.
class AmxScratch {
 public:
  float* floats(std::size_t count) {
    if (count > size_) {
      data_.reset(static_cast<float*>(::operator new(count * sizeof(float), std::align_val_t{64})));
      size_ = count;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const noexcept { ::operator delete(p, std::align_val_t{64}); }
  };
  std::unique_ptr<float, Free> data_;
  std::size_t size_ = 0;
};

/// c[32·m_blocks x 32·n_blocks] (row stride ldc) = (accumulate ? c : 0) + A · B over 32·k_steps, in float32
/// from the six bfloat16 part products (see the file comment).
GKD_AMX_TARGET inline void amx_bf16x6_gemm(AmxTiles a, AmxTiles b, std::int64_t m_blocks, std::int64_t n_blocks,
                                           std::int64_t k_steps, float* c, std::int64_t ldc, bool accumulate = false) {
  struct alignas(64) Config {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t bytes_per_row[16] = {};
    std::uint8_t rows[16] = {};
  } config;
  for (int t = 0; t < 8; ++t) config.bytes_per_row[t] = 64, config.rows[t] = 16;
  _tile_loadconfig(&config);
  __asm__ volatile("" ::: "memory");  // the tile loads read memory that the compiler does not see them read
  const long c_stride = static_cast<long>(ldc * 4);
  // tiles 4, 5: rows 0–15 and 16–31 of one part of A; 6, 7: columns 0–15 and 16–31 of one part of B
#define GKD_AMX_LOAD_A(p)                       \
  _tile_loadd(4, a.part[p] + a_at, 64);         \
  _tile_loadd(5, a.part[p] + a_at + a.block_stride, 64)
#define GKD_AMX_LOAD_B(p)                       \
  _tile_loadd(6, b.part[p] + b_at, 64);         \
  _tile_loadd(7, b.part[p] + b_at + b.block_stride, 64)
#define GKD_AMX_MULTIPLY     \
  _tile_dpbf16ps(0, 4, 6);   \
  _tile_dpbf16ps(1, 4, 7);   \
  _tile_dpbf16ps(2, 5, 6);   \
  _tile_dpbf16ps(3, 5, 7)
  for (std::int64_t i = 0; i < m_blocks; ++i)
    for (std::int64_t j = 0; j < n_blocks; ++j) {
      float* out = c + i * 32 * ldc + j * 32;
      if (accumulate) {
        _tile_loadd(0, out, c_stride);
        _tile_loadd(1, out + 16, c_stride);
        _tile_loadd(2, out + 16 * ldc, c_stride);
        _tile_loadd(3, out + 16 * ldc + 16, c_stride);
      } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      }
      for (std::int64_t s = 0; s < k_steps; ++s) {
        const std::int64_t a_at = 2 * i * a.block_stride + s * 512, b_at = 2 * j * b.block_stride + s * 512;
        // smallest terms first, in an order that reloads one operand per product
        GKD_AMX_LOAD_A(2);
        GKD_AMX_LOAD_B(0);
        GKD_AMX_MULTIPLY;  // lo·hi
        GKD_AMX_LOAD_A(1);
        GKD_AMX_MULTIPLY;  // mid·hi
        GKD_AMX_LOAD_B(1);
        GKD_AMX_MULTIPLY;  // mid·mid
        GKD_AMX_LOAD_A(0);
        GKD_AMX_MULTIPLY;  // hi·mid
        GKD_AMX_LOAD_B(2);
        GKD_AMX_MULTIPLY;  // hi·lo
        GKD_AMX_LOAD_B(0);
        GKD_AMX_MULTIPLY;  // hi·hi
      }
      _tile_stored(0, out, c_stride);
      _tile_stored(1, out + 16, c_stride);
      _tile_stored(2, out + 16 * ldc, c_stride);
      _tile_stored(3, out + 16 * ldc + 16, c_stride);
    }
#undef GKD_AMX_LOAD_A
#undef GKD_AMX_LOAD_B
#undef GKD_AMX_MULTIPLY
  _tile_release();
}

/// out[r, c] = x(i0 + r) · y(j0 + c) for r < i1 − i0, c < j1 − j0: a tile of x yᵀ from x's rows and y's
/// columns operands (one K). Any i0, j0: the product runs over the enclosing 32-aligned blocks.
template <class Out>
void amx_similarity_tile(const AmxOperand& x, const AmxOperand& y, std::int64_t i0, std::int64_t i1, std::int64_t j0,
                         std::int64_t j1, Out& out) {
  const std::int64_t i0a = i0 / 32 * 32, j0a = j0 / 32 * 32;
  const std::int64_t m_blocks = (i1 - i0a + 31) / 32, n_blocks = (j1 - j0a + 31) / 32, ld = n_blocks * 32;
  thread_local AmxScratch scratch;
  float* c = scratch.floats(std::size_t(m_blocks * 32 * ld));
  amx_bf16x6_gemm(x.tiles(i0a, 0), y.tiles(j0a, 0), m_blocks, n_blocks, x.k_steps(), c, ld);
  for (std::int64_t r = 0; r < i1 - i0; ++r)
    std::memcpy(&out(r, 0), c + (i0 - i0a + r) * ld + (j0 - j0a), std::size_t(j1 - j0) * sizeof(float));
}

/// out[r, 0..width) += Σ_k h(r, k) y(first + k) (with hᵀ for h when `transposed`), where y is a pairs
/// operand over rows (K) of `width` columns, h a row-major float matrix, and out row-major with row
/// stride width.
template <class Matrix>
void amx_add_tile_product(const Matrix& h, bool transposed, const AmxOperand& y, std::int64_t first, std::int64_t width,
                          float* out) {
  thread_local Matrix ht;
  if (transposed) ht = h.transpose();
  const Matrix& lhs_rows = transposed ? ht : h;
  const std::int64_t rows = lhs_rows.rows(), first_aligned = first / 32 * 32;
  thread_local AmxOperand lhs;
  lhs.assign_rows(rows, lhs_rows.cols(), first - first_aligned, [&](std::int64_t i) { return &lhs_rows(i, 0); });
  const std::int64_t m_blocks = (rows + 31) / 32, n_blocks = (width + 31) / 32, ld = n_blocks * 32;
  if (rows % 32 == 0 && width % 32 == 0)  // out holds whole 32 x 32 blocks: accumulate in place
    return amx_bf16x6_gemm(lhs.tiles(0, 0), y.tiles(0, first_aligned / 32), m_blocks, n_blocks, lhs.k_steps(), out,
                           width, true);
  thread_local AmxScratch scratch;
  float* c = scratch.floats(std::size_t(m_blocks * 32 * ld));
  amx_bf16x6_gemm(lhs.tiles(0, 0), y.tiles(0, first_aligned / 32), m_blocks, n_blocks, lhs.k_steps(), c, ld);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t k = 0; k < width; ++k) out[r * width + k] += c[r * ld + k];
}

#endif  // GKD_AMX_BF16

}  // namespace gkd::detail
