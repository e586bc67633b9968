// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Similarity tiles x yᵀ of float rows on Intel AMX-INT8 (internal, in gkd::detail), for the fused
/// distillation losses, whose rows are L2-normalised. Each row is held in fixed point relative to its
/// largest magnitude m: X_k = round(x_k · s) with s = Q / m (in float64), Q = kAmxFixedMax ≈ 2²³, written as
/// three balanced base-256 digits X = 2¹⁶ d₂ + 2⁸ d₁ + d₀ (|d₂| ≤ 126, d₁, d₀ ∈ [−128, 127]: signed
/// bytes). TDPBSSD multiplies digits exactly into int32, and a tile keeps the six digit products of
/// weight 2¹⁶ and above (d₂e₂ in one accumulator, d₂e₁ + d₁e₂ in a second, d₂e₀ + d₁e₁ + d₀e₂ in a
/// third) and drops the zero-mean d₁e₀ + d₀e₁ and d₀e₀. The epilogue scales the exact integer sum by
/// 1 / (s_x s_y) in float64 (the very scales applied, so no error of their own) and rounds to float. Per
/// entry,
///   |out − x·y| ≤ (2⁻¹ + 2⁻³⁰) (‖x‖₁ m_y + ‖y‖₁ m_x) / Q + K (2²³ + 2¹⁴ + 1) m_x m_y / Q² + 2⁻²³ |x·y|
/// (rounding to integers, dropped products, rounding to float; plus a subnormal step where the result
/// is one). The first two terms are worst cases of
/// sums of zero-mean errors; on unit rows the error is that of a float32 dot product: RMS 1.6e-8 against
/// 1.8e-8 for a serial float32 dot product at 512 channels, 3e-8 against 2e-8 at 64
/// (tests/ops/test_amx.cpp checks the bound, and the worst error against float32's). Against AMX-BF16
/// with three parts (gkd/ops/amx_bf16.hpp), the operands take half the bytes and a product half the tile
/// instructions: a 128 x 128 x 512 tile took 43–46 instead of 68 µs, streamed in the losses' pair order.
///
/// Operands (AmxDigits) are packed once, zero-padded to 16 rows and 64 k; the tile of rows r…r + 15 and
/// k…k + 63 of digit d is 1 KiB of contiguous memory at ((r / 16) · kp / 64 + k / 64) · 1024 in plane d:
///   rows     the left operand A(i, k) = x[i][k], byte (i % 16) · 64 + k % 64;
///   columns  the right operand B(k, j) = y[j][k], in the order that TDPBSSD reads (four k per 32-bit
///            word): byte (k % 64) / 4 · 64 + (j % 16) · 4 + k % 4.
///
/// Everything here needs amx_available() (gkd/ops/amx.hpp) to be true, and rows of at most
/// kAmxInt8MaxDepth values (the int32 accumulators' range).
/// @code
///   // out[n x n] = x xᵀ for x[n x c], row-major, where amx_available()
///   const gkd::detail::AmxDigits rows(x, n, c, c, gkd::detail::AmxDigits::Layout::Rows);
///   const gkd::detail::AmxDigits columns(x, n, c, c, gkd::detail::AmxDigits::Layout::Columns);
///   gkd::detail::amx_similarity_tile(rows, columns, 0, n, 0, n, out, n);
/// @endcode
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>

#include "gkd/core/error.hpp"
#include "gkd/core/host_cache.hpp"
#include "gkd/ops/amx.hpp"

namespace gkd::detail {

/// The largest fixed-point magnitude of a row: three balanced digits hold it with |d₂| ≤ 126.
inline constexpr std::int32_t kAmxFixedMax = (1 << 23) - (1 << 17);
/// The longest rows: a product's third accumulator gains at most 2 · 126 · 128 + 128² = 48640 per k, and
/// must stay below 2³¹.
inline constexpr std::int64_t kAmxInt8MaxDepth = 32768;

#ifdef GKD_AMX

/// Float rows packed as fixed-point int8 digits for amx_similarity_tile (see the file comment): three
/// digit planes and one scale per row, in one 64-byte-aligned block from the host cache. Move-only.
class AmxDigits {
 public:
  enum class Layout { Rows, Columns };

  AmxDigits() = default;
  /// Rows x[i · ld + k], i < n, k < depth ≤ kAmxInt8MaxDepth, as left (Rows) or right (Columns) operands
  /// of x yᵀ. A row with a value that is not finite gets a NaN scale, so its similarities are NaN.
  AmxDigits(const float* x, std::int64_t n, std::int64_t depth, std::int64_t ld, Layout layout)
      : layout_(layout), outer_((n + 15) / 16 * 16), kp_((depth + 63) / 64 * 64) {
    GKD_CHECK(depth >= 1 && depth <= kAmxInt8MaxDepth, "amx_int8",
              "rows of " << depth << " values; AMX-INT8 similarity tiles take 1 to " << kAmxInt8MaxDepth);
    const std::size_t bytes = std::size_t(3 * outer_ * kp_ + 8 * outer_);
    block_ = std::unique_ptr<void, Release>(HostCache::instance().allocate(bytes), Release{bytes});
#pragma omp parallel for if (n * depth > (1 << 16))
    for (std::int64_t i = 0; i < outer_; ++i) pack(i, i < n ? x + i * ld : nullptr, i < n ? depth : 0);
  }

  [[nodiscard]] bool empty() const { return !block_; }
  /// K padded to 64, in steps of 64.
  [[nodiscard]] std::int64_t k_steps() const { return kp_ / 64; }
  /// The first tile of rows r…r + 15 (r a multiple of 16) in digit plane d; its k steps follow 1 KiB apart.
  [[nodiscard]] const std::int8_t* tiles(std::int64_t r, int d) const { return plane(d) + r / 16 * k_steps() * 1024; }
  /// 2⁸ / s per row, where the row's fixed-point integers are round(x_k · s), s = Q / m (m: its
  /// largest magnitude): two of them scale a product. 0 on zero and padding rows, NaN on non-finite ones.
  [[nodiscard]] const double* scales() const { return reinterpret_cast<const double*>(plane(3)); }

 private:
  struct Release {
    std::size_t bytes;
    void operator()(void* p) const noexcept { HostCache::instance().release(p, bytes); }
  };

  [[nodiscard]] std::int8_t* plane(int d) const { return static_cast<std::int8_t*>(block_.get()) + d * outer_ * kp_; }

  /// Row i from x[0 … depth) (zeros after it; a null x: a padding row).
  GKD_AMX_TARGET void pack(std::int64_t i, const float* x, std::int64_t depth) {
    __m512 top = _mm512_setzero_ps(), finite = _mm512_setzero_ps();  // finite: Σ 0 · x, NaN unless all are
    for (std::int64_t k0 = 0; k0 < depth; k0 += 16) {
      const __m512 v = amx_load16(x + k0, depth - k0);
      top = _mm512_max_ps(top, _mm512_abs_ps(v));
      finite = _mm512_add_ps(finite, _mm512_mul_ps(v, _mm512_setzero_ps()));
    }
    const float m = _mm512_reduce_max_ps(top);
    const bool ok = !std::isnan(_mm512_reduce_add_ps(finite));
    // in float64 throughout: Q / m exceeds float's range where m < 2.4e-32
    const double scale = ok && m > 0 ? double(kAmxFixedMax) / m : 0.0;
    reinterpret_cast<double*>(plane(3))[i] = !ok ? std::numeric_limits<double>::quiet_NaN() : scale > 0 ? 256.0 / scale : 0.0;
    if (!ok) depth = 0;  // zero digits under the NaN scale
    const __m512d scale8 = _mm512_set1_pd(scale);
    for (std::int64_t k0 = 0; k0 < kp_; k0 += 16) {
      const __m512 v = amx_load16(k0 < depth ? x + k0 : nullptr, depth - k0);  // (never offsets a null x)
      const __m256i low = _mm512_cvtpd_epi32(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), scale8));
      const __m256i high = _mm512_cvtpd_epi32(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), scale8));
      __m512i rest = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
      const std::int64_t at = (i / 16 * k_steps() + k0 / 64) * 1024;
      for (int d = 0; d < 3; ++d) {
        // balanced digit: ((rest + 128) mod 256) − 128, then rest = (rest − digit) / 256, exactly
        const __m512i digit = d == 2 ? rest
                                     : _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(rest, _mm512_set1_epi32(128)),
                                                                         _mm512_set1_epi32(255)),
                                                        _mm512_set1_epi32(128));
        rest = _mm512_srai_epi32(_mm512_sub_epi32(rest, digit), 8);
        const __m128i bytes = _mm512_cvtepi32_epi8(digit);
        std::int8_t* tile = plane(d) + at;
        if (layout_ == Layout::Rows) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(tile + (i % 16) * 64 + k0 % 64), bytes);
        } else {
          alignas(16) std::int32_t words[4];
          _mm_store_si128(reinterpret_cast<__m128i*>(words), bytes);
          for (int q = 0; q < 4; ++q)
            std::memcpy(tile + ((k0 % 64) / 4 + q) * 64 + (i % 16) * 4, &words[q], sizeof(std::int32_t));
        }
      }
    }
  }

  std::unique_ptr<void, Release> block_{nullptr, Release{0}};
  Layout layout_ = Layout::Rows;
  std::int64_t outer_ = 0, kp_ = 0;  // rows padded to 16, K padded to 64
};

namespace amx_int8 {

/// Writes the entries [i0, i1) x [j0, j1) of the 16 x 16 tile at (it, jt) from its three weight classes:
/// out = (2¹⁶ w₃₂ + 2⁸ w₂₄ + w₁₆) · scale_x · scale_y · factor, in float64 (exact up to that scaling),
/// then rounded to T.
template <class T>
GKD_AMX_TARGET inline void write_tile(const std::int32_t (&acc)[3][256], const double* sx, const double* sy, double factor,
                                      std::int64_t it, std::int64_t jt, std::int64_t i0, std::int64_t i1,
                                      std::int64_t j0, std::int64_t j1, T* out, std::int64_t ld) {
  const std::int64_t c0 = std::max(jt, j0), c1 = std::min(jt + 16, j1);
  for (std::int64_t r = std::max(it, i0); r < std::min(it + 16, i1); ++r) {
    T* row = out + (r - i0) * ld + (c0 - j0);
    alignas(64) T partial[16];  // a tile cut by [j0, j1)
    T* values = c1 - c0 == 16 ? row : partial;
    for (int h = 0; h < 2; ++h) {
      const std::int64_t at = (r - it) * 16 + h * 8;
      __m512d w[3];
      for (int c = 0; c < 3; ++c) w[c] = _mm512_cvtepi32_pd(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc[c] + at)));
      const __m512d sum = _mm512_fmadd_pd(w[0], _mm512_set1_pd(65536.0), _mm512_fmadd_pd(w[1], _mm512_set1_pd(256.0), w[2]));
      const __m512d v = _mm512_mul_pd(_mm512_mul_pd(sum, _mm512_set1_pd(sx[r] * factor)), _mm512_loadu_pd(sy + jt + h * 8));
      if constexpr (std::is_same_v<T, double>) _mm512_storeu_pd(values + h * 8, v);
      else _mm256_storeu_ps(values + h * 8, _mm512_cvtpd_ps(v));
    }
    if (values == partial) std::memcpy(row, partial + (c0 - jt), std::size_t(c1 - c0) * sizeof(T));
  }
}

}  // namespace amx_int8

/// out[r · ld + c] = factor · x(i0 + r) · y(j0 + c) for r < i1 − i0, c < j1 − j0 (T: float or double): a
/// tile of x yᵀ from x's Rows and y's Columns digits (one K), to the accuracy of the file comment (in
/// double, without its rounding to float). Any offsets: the products run over the enclosing 16-aligned
/// tiles, and only the requested entries are written.
template <class T>
GKD_AMX_TARGET void amx_similarity_tile(const AmxDigits& x, const AmxDigits& y, std::int64_t i0, std::int64_t i1,
                                        std::int64_t j0, std::int64_t j1, T* out, std::int64_t ld, double factor = 1) {
  configure_amx_tiles();
  alignas(64) std::int32_t acc[3][16 * 16];  // the three weight classes of one 16 x 16 tile
  const std::int64_t steps = x.k_steps();
  for (std::int64_t it = i0 / 16 * 16; it < i1; it += 16) {
    const std::int8_t* a[3] = {x.tiles(it, 0), x.tiles(it, 1), x.tiles(it, 2)};
    for (std::int64_t jt = j0 / 16 * 16; jt < j1; jt += 16) {
      const std::int8_t* b[3] = {y.tiles(jt, 0), y.tiles(jt, 1), y.tiles(jt, 2)};
      // tiles 0–2: the weight classes 2³², 2²⁴, 2¹⁶; 3–5: x's digits d₂, d₁, d₀; 6, 7: y's digits
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      for (std::int64_t s = 0; s < steps * 1024; s += 1024) {
        _tile_loadd(3, a[2] + s, 64);
        _tile_loadd(4, a[1] + s, 64);
        _tile_loadd(5, a[0] + s, 64);
        _tile_loadd(6, b[2] + s, 64);
        _tile_dpbssd(0, 3, 6);
        _tile_dpbssd(1, 4, 6);
        _tile_dpbssd(2, 5, 6);
        _tile_loadd(7, b[1] + s, 64);
        _tile_dpbssd(1, 3, 7);
        _tile_dpbssd(2, 4, 7);
        _tile_loadd(6, b[0] + s, 64);
        _tile_dpbssd(2, 3, 6);
      }
      _tile_stored(0, acc[0], 64);
      _tile_stored(1, acc[1], 64);
      _tile_stored(2, acc[2], 64);
      amx_int8::write_tile(acc, x.scales(), y.scales(), factor, it, jt, i0, i1, j0, j1, out, ld);
    }
  }
  _tile_release();
}

#endif  // GKD_AMX

}  // namespace gkd::detail
