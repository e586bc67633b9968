// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Float32-accurate matrix products on Intel AMX tiles (internal, in gkd::detail), for the gradient
/// products of the fused distillation losses (gkd/ops/amx_int8.hpp makes their similarity tiles). Each
/// float is split into three bfloat16 parts, x = hi + mid + lo with |x − hi − mid − lo| ≤ 2⁻²⁴|x| (24
/// significant bits, as many as float32 has), and a product accumulates the six part products above
/// 2⁻²⁴|x||y| (lo·hi, mid·hi, mid·mid, hi·mid, hi·lo, hi·hi) in float32 with TDPBF16PS, whose bfloat16
/// products are exact: the error is that of a float32 accumulation (tests/ops/test_amx.cpp). Two
/// parts and three products would be twice as fast but only 16 bits accurate (1e-5 on the similarity of a
/// 4-channel unit row with itself).
///
/// Operands are packed once (AmxOperand) into tiles of 16 rows (or columns) by 32 k, zero-padded to
/// multiples of 32 in both dimensions; tile (r / 16, k / 32) starts at ((r / 16) · kp / 32 + k / 32) · 512
/// (kp: K padded), so that one tile is 1 KiB of contiguous memory:
///   rows     the left operand A(i, k), element (i % 16) · 32 + k % 32 of its tile;
///   pairs    the right operand of h·y, B(k, j) = y[k][j] (the contraction runs over y's rows), in the
///            VNNI order that TDPBF16PS reads: element (k % 32) / 2 · 32 + (j % 16) · 2 + k % 2.
///
/// Everything here needs amx_available() (gkd/ops/amx.hpp) to be true.
/// @code
///   // out[32 x 64] += h[32 x 48] · y[48 x 64], all row-major, where amx_available()
///   const auto pairs = gkd::detail::AmxOperand::pairs(y, 48, 64, 64);
///   gkd::detail::amx_add_tile_product(h, false, pairs, 0, 64, out);
/// @endcode
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "gkd/core/host_cache.hpp"
#include "gkd/ops/amx.hpp"

namespace gkd::detail {

#ifdef GKD_AMX

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

  /// Left operand A(i, k) = row(i)[k − shift] for shift ≤ k < shift + depth and 0 elsewhere, i < m, into
  /// this operand's storage when it is large enough (scratch operands reused across calls).
  template <class Row>
  void assign_rows(std::int64_t m, std::int64_t depth, std::int64_t shift, Row&& row) {
    reserve(m, shift + depth);
#pragma omp parallel for if (m * depth > (1 << 16))
    for (std::int64_t i = 0; i < m; ++i) pack_row(i, row(i), shift, depth);
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
  /// Rows k and k + 1 of a pairs operand from y0[j] and y1[j] (null: zero), j < n: one 64-byte tile row
  /// per 16 columns.
  GKD_AMX_TARGET void pack_pair(std::int64_t k, const float* y0, const float* y1, std::int64_t n) {
    for (std::int64_t j0 = 0; j0 < n; j0 += 16) {
      __m256i first[3], second[3];
      split_bf16(amx_load16(y0 + j0, n - j0), first);
      split_bf16(y1 ? amx_load16(y1 + j0, n - j0) : _mm512_setzero_ps(), second);
      const std::int64_t at = tile(j0, k) + (k % 32) / 2 * 32;
      for (int p = 0; p < 3; ++p) {
        const __m512i words =
            _mm512_or_si512(_mm512_cvtepu16_epi32(first[p]), _mm512_slli_epi32(_mm512_cvtepu16_epi32(second[p]), 16));
        _mm512_storeu_si512(plane(p) + at, words);
      }
    }
  }

  std::unique_ptr<void, Release> block_{nullptr, Release{0}};
  std::int64_t outer_ = 0, kp_ = 0;  // padded rows (columns), padded K
};

/// c[32·m_blocks x 32·n_blocks] (row stride ldc) = (accumulate ? c : 0) + A · B over 32·k_steps, in float32
/// from the six bfloat16 part products (see the file comment).
GKD_AMX_TARGET inline void amx_bf16x6_gemm(AmxTiles a, AmxTiles b, std::int64_t m_blocks, std::int64_t n_blocks,
                                           std::int64_t k_steps, float* c, std::int64_t ldc, bool accumulate = false) {
  configure_amx_tiles();
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
  thread_local AmxScratch<float> scratch;
  float* c = scratch.get(std::size_t(m_blocks * 32 * ld));
  amx_bf16x6_gemm(lhs.tiles(0, 0), y.tiles(0, first_aligned / 32), m_blocks, n_blocks, lhs.k_steps(), c, ld);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t k = 0; k < width; ++k) out[r * width + k] += c[r * ld + k];
}

#endif  // GKD_AMX

}  // namespace gkd::detail
