// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The dense GEMMs behind the CPU convolutions and the fused distillation losses' tiles (internal, in
/// gkd::detail): C[m x n] = (accumulate ? C : 0) + A[m x k] B[k x n] on raw pointers with strides,
/// single-threaded inside an OpenMP region and split by output columns outside one, with results that
/// do not depend on the thread count. For float on AVX2/FMA builds, gkd's own packed kernel
/// (`detail::sgemm`, BLIS's scheme: a 6x16 micro-kernel, 8x32 on AVX-512 builds); Eigen otherwise.
/// @code
///   // c[4 x 3] = a[4 x 5] · b[5 x 3], all row-major
///   gkd::detail::strided_gemm<float>(4, 3, 5, a, 5, 1, b, 3, 1, c, 3, /*accumulate=*/false);
/// @endcode
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "gkd/core/dtype.hpp"
#include "gkd/core/parallel.hpp"
#include "gkd/ops/linalg.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/// Defined when float GEMMs use gkd's own packed kernel (detail::sgemm): AVX2/FMA builds, with a
/// 512-bit micro-kernel where the build also targets AVX-512.
#define GKD_SGEMM 1
#endif

namespace gkd::detail {

template <Real T>
using StridedMap = Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <Real T>
using ConstStridedMap = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// ---- GEMM -------------------------------------------------------------------------------------------
// C[m x n] = (accumulate ? C : 0) + A[m x k] B[k x n], where A(i, p) = a[i * rsa + p * csa],
// B(p, j) = b[p * rsb + j * csb] (each operand has a unit stride along one of its dims) and C is
// row-major with row stride ldc.

/// Whether an enclosing OpenMP parallel region is active.
inline bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

/// Keeps Eigen's GEMM on the calling thread while alive: Eigen's threaded GEMM chooses its depth
/// blocking by thread count, which would make results depend on it.
class SerialEigen {
 public:
#ifdef _OPENMP
  SerialEigen() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SerialEigen() { omp_set_num_threads(saved_); }
#else
  SerialEigen() = default;
#endif
  SerialEigen(const SerialEigen&) = delete;
  SerialEigen& operator=(const SerialEigen&) = delete;

 private:
#ifdef _OPENMP
  int saved_;
#endif
};

/// One single-threaded Eigen GEMM (any T).
template <Real T>
void eigen_gemm_serial(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t rsa, std::int64_t csa,
                       const T* b, std::int64_t rsb, std::int64_t csb, T* c, std::int64_t ldc, bool accumulate) {
  SerialEigen serial;
  StridedMap<T> out(c, m, n, Eigen::OuterStride<>(ldc));
  auto run = [&](const auto& lhs, const auto& rhs) {
    if (accumulate)
      out.noalias() += lhs * rhs;
    else
      out.noalias() = lhs * rhs;
  };
  auto with_lhs = [&](const auto& lhs) {
    if (csb == 1)
      run(lhs, ConstStridedMap<T>(b, k, n, Eigen::OuterStride<>(std::max(rsb, n))));
    else
      run(lhs, ConstStridedMap<T>(b, n, k, Eigen::OuterStride<>(std::max(csb, k))).transpose());
  };
  if (csa == 1)
    with_lhs(ConstStridedMap<T>(a, m, k, Eigen::OuterStride<>(std::max(rsa, k))));
  else
    with_lhs(ConstStridedMap<T>(a, k, m, Eigen::OuterStride<>(std::max(csa, m))).transpose());
}

/// The Eigen implementation (any T). Outside a parallel region, a large product is split by output
/// columns across threads, each running Eigen serially, at multiples of 48 columns (a multiple of
/// every register-panel height Eigen uses): the depth blocking and the kernel that computes each
/// element, so its summation order, stay those of the serial product whatever the thread count.
template <Real T>
void eigen_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t rsa, std::int64_t csa,
                const T* b, std::int64_t rsb, std::int64_t csb, T* c, std::int64_t ldc, bool accumulate) {
  constexpr std::int64_t kAlign = 48;
  const int threads = num_threads();
  if (threads <= 1 || in_parallel_region() || m * n * k < (1 << 21) || n < 2 * kAlign)
    return eigen_gemm_serial(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, accumulate);
  const std::int64_t chunks = std::min<std::int64_t>(threads, n / kAlign);
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(chunks))
  for (std::int64_t part = 0; part < chunks; ++part) {
    const std::int64_t j0 = part * n / chunks / kAlign * kAlign;
    const std::int64_t j1 = part + 1 == chunks ? n : (part + 1) * n / chunks / kAlign * kAlign;
    eigen_gemm_serial(m, j1 - j0, k, a, rsa, csa, b + j0 * csb, rsb, csb, c + j0, ldc, accumulate);
  }
}

#ifdef GKD_SGEMM
/// A packed, register-blocked float GEMM (the BLIS scheme: B blocks of KC x NC in NR-column panels,
/// A blocks of MC x KC in MR-row panels, an MR x NR micro-kernel). AVX2/FMA: 6x16 with 12 vector
/// accumulators, about 1.3-1.5x faster than Eigen 3.4's kernel on conv's GEMM shapes and the fused
/// losses' similarity tiles (Zen 3). AVX-512: 8x32 with 16 accumulators, 5-37% faster than Eigen's
/// AVX-512 kernel on UnetSKA2's forward and input-gradient conv shapes (Xeon, 1 thread).
namespace sgemm {

#ifdef __AVX512F__
inline constexpr std::int64_t kMR = 8, kNR = 32, kKC = 256, kMC = 192, kNC = 1024;
#else
inline constexpr std::int64_t kMR = 6, kNR = 16, kKC = 256, kMC = 96, kNC = 2048;
#endif

/// Whether the packed kernel beats Eigen on an m x n product (measured; below these sizes packing
/// and the zero-padded edge panels cost more than the kernel saves).
inline bool pays_off(std::int64_t m, std::int64_t n) {
#ifdef __AVX512F__
  return m >= 64 && n >= 2 * kNR && (n % kNR == 0 || n >= 4 * kNR);
#else
  return m >= 4 && n >= 2 * kNR;
#endif
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};

inline float* aligned_floats(std::size_t count) {
  auto* p = static_cast<float*>(std::aligned_alloc(64, count * sizeof(float)));
  if (!p) throw std::bad_alloc();
  return p;
}

/// Per-thread packing buffers, allocated once per thread (AVX2: 96 KiB and 2 MiB; AVX-512: 192 KiB and 1 MiB).
inline float* buffer_a() {
  thread_local std::unique_ptr<float, AlignedFree> buf(aligned_floats(kMC * kKC));
  return buf.get();
}
inline float* buffer_b() {
  thread_local std::unique_ptr<float, AlignedFree> buf(aligned_floats(kKC * kNC));
  return buf.get();
}

/// Transposes the 8 x 8 block held in r[0..7] (row i becomes column i).
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

/// Packs A[mc x kc] into MR-row panels, p-major (dst[panel][p][r]); rows past mc are zero. Rows that
/// are contiguous along p (csa == 1, the similarity tiles' X) are transposed 8 values at a time.
inline void pack_a(std::int64_t mc, std::int64_t kc, const float* a, std::int64_t rsa, std::int64_t csa, float* dst) {
  for (std::int64_t i = 0; i < mc; i += kMR) {
    const std::int64_t rows = std::min(kMR, mc - i);
    std::int64_t p = 0;
    if (csa == 1 && rows == kMR) {
      for (; p + 8 <= kc; p += 8, dst += 8 * kMR) {
        __m256 r[8];
        for (int q = 0; q < 8; ++q) r[q] = q < kMR ? _mm256_loadu_ps(a + (i + q) * rsa + p) : _mm256_setzero_ps();
        transpose8(r);
        for (int q = 0; q < 8; ++q) {
          if constexpr (kMR == 8) {
            _mm256_storeu_ps(dst + q * kMR, r[q]);
          } else {  // 6 values: 4 + 2 (a masked store is slow on AMD cores)
            _mm_storeu_ps(dst + q * kMR, _mm256_castps256_ps128(r[q]));
            _mm_storel_pi(reinterpret_cast<__m64*>(dst + q * kMR + 4), _mm256_extractf128_ps(r[q], 1));
          }
        }
      }
    }
    if (rsa == 1 && rows == kMR)  // columns contiguous along i (conv's input gradient, Wᵀ)
      for (; p < kc; ++p, dst += kMR) std::memcpy(dst, a + i + p * csa, kMR * sizeof(float));
    for (; p < kc; ++p, dst += kMR) {
      for (std::int64_t r = 0; r < rows; ++r) dst[r] = a[(i + r) * rsa + p * csa];
      for (std::int64_t r = rows; r < kMR; ++r) dst[r] = 0.f;
    }
  }
}

/// Packs B[kc x nc] into NR-column panels, p-major (dst[panel][p][q]); columns past nc are zero.
/// Columns that are contiguous along p (rsb == 1: the similarity tiles' Yᵀ, the weight gradient's
/// output gradient) are transposed 8 x 8 at a time.
inline void pack_b(std::int64_t kc, std::int64_t nc, const float* b, std::int64_t rsb, std::int64_t csb, float* dst) {
  for (std::int64_t j = 0; j < nc; j += kNR, dst += kc * kNR) {
    const std::int64_t cols = std::min(kNR, nc - j);
    if (csb == 1 && cols == kNR) {
      for (std::int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * kNR, b + p * rsb + j, kNR * sizeof(float));
    } else if (csb == 1) {
      for (std::int64_t p = 0; p < kc; ++p) {
        for (std::int64_t q = 0; q < cols; ++q) dst[p * kNR + q] = b[p * rsb + j + q];
        for (std::int64_t q = cols; q < kNR; ++q) dst[p * kNR + q] = 0.f;
      }
    } else {  // rsb == 1: each column is contiguous along p
      std::int64_t p = 0;
      if (cols == kNR)
        for (; p + 8 <= kc; p += 8)
          for (std::int64_t half = 0; half < kNR; half += 8) {
            __m256 r[8];
            for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(b + (j + half + q) * csb + p);
            transpose8(r);
            for (int q = 0; q < 8; ++q) _mm256_store_ps(dst + (p + q) * kNR + half, r[q]);
          }
      for (std::int64_t q = 0; q < kNR; ++q) {
        const float* src = b + (j + q) * csb;
        for (std::int64_t pp = p; pp < kc; ++pp) dst[pp * kNR + q] = q < cols ? src[pp] : 0.f;
      }
    }
  }
}

/// Where row p of a B operand with contiguous columns starts: b + p * ld.
struct StridedRows {
  const float* b;
  std::int64_t ld;
  const float* operator[](std::int64_t p) const { return b + p * ld; }
  /// The operand from row p, column j on.
  StridedRows at(std::int64_t p, std::int64_t j) const { return {b + p * ld + j, ld}; }
};
/// Where row p of a B operand gathered by pointer starts: rows[p] + offset (conv's implicit im2col,
/// whose rows are shifted rows of the padded input).
struct GatheredRows {
  const float* const* rows;
  std::int64_t offset;
  const float* operator[](std::int64_t p) const { return rows[p] + offset; }
  GatheredRows at(std::int64_t p, std::int64_t j) const { return {rows + p, offset + j}; }
};

/// Copies B[kc x cols] (cols <= kNR) into one NR-column panel, zero-padded to kNR columns.
template <class Rows>
void pack_partial_strip(std::int64_t kc, std::int64_t cols, const Rows& b, float* dst) {
  for (std::int64_t p = 0; p < kc; ++p, dst += kNR) {
    std::memcpy(dst, b[p], static_cast<std::size_t>(cols) * sizeof(float));
    std::fill(dst + cols, dst + kNR, 0.f);
  }
}

/// Writes a micro-kernel's result tile (row-major kMR x kNR) to the top-left rows x cols corner of C:
/// C = tile when overwrite, C += tile otherwise.
inline void write_tile(const float* tile, float* c, std::int64_t rsc, std::int64_t csc, bool overwrite,
                       std::int64_t rows, std::int64_t cols) {
  if (rows == kMR && cols == kNR && csc == 1) {
    for (std::int64_t r = 0; r < kMR; ++r) {
      float* cr = c + r * rsc;
      const float* tr = tile + r * kNR;
      if (overwrite) {
        std::memcpy(cr, tr, kNR * sizeof(float));
      } else {
#pragma omp simd
        for (std::int64_t q = 0; q < kNR; ++q) cr[q] += tr[q];
      }
    }
    return;
  }
  if (rsc == 1) {  // C stored transposed (conv's weight gradient): each tile column is contiguous in C
    for (std::int64_t q = 0; q < cols; ++q) {
      float* cq = c + q * csc;
      for (std::int64_t r = 0; r < rows; ++r) cq[r] = overwrite ? tile[r * kNR + q] : cq[r] + tile[r * kNR + q];
    }
    return;
  }
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t q = 0; q < cols; ++q) {
      float& dst = c[r * rsc + q * csc];
      dst = overwrite ? tile[r * kNR + q] : dst + tile[r * kNR + q];
    }
}

#ifdef __AVX512F__
/// C[rows x cols] (+)= packed A panel (kc x 8) * B panel (kc x 32; row p at b[p]: a packed panel is
/// StridedRows{panel, kNR}); rows <= 8, cols <= 32. The sixteen accumulators are named variables: GCC
/// keeps them in registers only that way.
template <class Rows>
void micro_kernel(std::int64_t kc, const float* a, const Rows& b, float* c, std::int64_t rsc, std::int64_t csc,
                  bool overwrite, std::int64_t rows, std::int64_t cols) {
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
  __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
  __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
  __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
  for (std::int64_t p = 0; p < kc; ++p, a += kMR) {
    const float* bp = b[p];
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
    const auto row = [&](__m512& lo, __m512& hi, float av) {
      const __m512 v = _mm512_set1_ps(av);
      lo = _mm512_fmadd_ps(v, b0, lo);
      hi = _mm512_fmadd_ps(v, b1, hi);
    };
    row(c00, c01, a[0]);
    row(c10, c11, a[1]);
    row(c20, c21, a[2]);
    row(c30, c31, a[3]);
    row(c40, c41, a[4]);
    row(c50, c51, a[5]);
    row(c60, c61, a[6]);
    row(c70, c71, a[7]);
  }
  const __m512 acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
  alignas(64) float tile[kMR * kNR];
  for (int v = 0; v < 16; ++v) _mm512_store_ps(tile + 16 * v, acc[v]);
  write_tile(tile, c, rsc, csc, overwrite, rows, cols);
}
#else
/// C[rows x cols] (+)= packed A panel (kc x 6) * B panel (kc x 16; row p at b[p]: a packed panel is
/// StridedRows{panel, kNR}); rows <= 6, cols <= 16. The twelve accumulators are named variables: GCC
/// keeps them in registers only that way.
template <class Rows>
void micro_kernel(std::int64_t kc, const float* a, const Rows& b, float* c, std::int64_t rsc, std::int64_t csc,
                  bool overwrite, std::int64_t rows, std::int64_t cols) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (std::int64_t p = 0; p < kc; ++p, a += kMR) {
    const float* bp = b[p];
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
    const auto row = [&](__m256& lo, __m256& hi, const float* av) {
      const __m256 v = _mm256_broadcast_ss(av);
      lo = _mm256_fmadd_ps(v, b0, lo);
      hi = _mm256_fmadd_ps(v, b1, hi);
    };
    row(c00, c01, a);
    row(c10, c11, a + 1);
    row(c20, c21, a + 2);
    row(c30, c31, a + 3);
    row(c40, c41, a + 4);
    row(c50, c51, a + 5);
  }
  const __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
  alignas(32) float tile[kMR * kNR];
  for (int v = 0; v < 12; ++v) _mm256_store_ps(tile + 8 * v, acc[v]);
  write_tile(tile, c, rsc, csc, overwrite, rows, cols);
}
#endif

/// Sum of the eight lanes.
inline float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

/// C [m x n] += A [m x k] · Bᵀ where A and B [n x k] are row-major with contiguous rows (strides lda,
/// ldb) and C has row stride ldc: every C element is a dot product of two contiguous rows, so no
/// packing is needed. 4x3 blocks of dot products keep twelve vector accumulators; depth runs in
/// chunks that keep the three B rows in L1 across the row blocks of A.
inline void gemm_nt(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, const float* b,
                    std::int64_t ldb, float* c, std::int64_t ldc) {
  constexpr std::int64_t kChunk = 1024;
  for (std::int64_t p0 = 0; p0 < k; p0 += kChunk) {
    const std::int64_t kk = std::min(kChunk, k - p0), kv = kk & ~std::int64_t{7};
    std::int64_t j = 0;
    for (; j + 3 <= n; j += 3) {
      const float* b0 = b + j * ldb + p0;
      const float* b1 = b0 + ldb;
      const float* b2 = b1 + ldb;
      std::int64_t i = 0;
      for (; i + 4 <= m; i += 4) {
        const float* a0 = a + i * lda + p0;
        const float* a1 = a0 + lda;
        const float* a2 = a1 + lda;
        const float* a3 = a2 + lda;
        __m256 s00 = _mm256_setzero_ps(), s01 = _mm256_setzero_ps(), s02 = _mm256_setzero_ps();
        __m256 s10 = _mm256_setzero_ps(), s11 = _mm256_setzero_ps(), s12 = _mm256_setzero_ps();
        __m256 s20 = _mm256_setzero_ps(), s21 = _mm256_setzero_ps(), s22 = _mm256_setzero_ps();
        __m256 s30 = _mm256_setzero_ps(), s31 = _mm256_setzero_ps(), s32 = _mm256_setzero_ps();
        for (std::int64_t p = 0; p < kv; p += 8) {
          const __m256 v0 = _mm256_loadu_ps(b0 + p), v1 = _mm256_loadu_ps(b1 + p), v2 = _mm256_loadu_ps(b2 + p);
          __m256 u = _mm256_loadu_ps(a0 + p);
          s00 = _mm256_fmadd_ps(u, v0, s00);
          s01 = _mm256_fmadd_ps(u, v1, s01);
          s02 = _mm256_fmadd_ps(u, v2, s02);
          u = _mm256_loadu_ps(a1 + p);
          s10 = _mm256_fmadd_ps(u, v0, s10);
          s11 = _mm256_fmadd_ps(u, v1, s11);
          s12 = _mm256_fmadd_ps(u, v2, s12);
          u = _mm256_loadu_ps(a2 + p);
          s20 = _mm256_fmadd_ps(u, v0, s20);
          s21 = _mm256_fmadd_ps(u, v1, s21);
          s22 = _mm256_fmadd_ps(u, v2, s22);
          u = _mm256_loadu_ps(a3 + p);
          s30 = _mm256_fmadd_ps(u, v0, s30);
          s31 = _mm256_fmadd_ps(u, v1, s31);
          s32 = _mm256_fmadd_ps(u, v2, s32);
        }
        float r[12] = {hsum(s00), hsum(s01), hsum(s02), hsum(s10), hsum(s11), hsum(s12),
                       hsum(s20), hsum(s21), hsum(s22), hsum(s30), hsum(s31), hsum(s32)};
        const float* as[4] = {a0, a1, a2, a3};
        const float* bs[3] = {b0, b1, b2};
        for (int x = 0; x < 4; ++x)
          for (int y = 0; y < 3; ++y) {
            float t = r[x * 3 + y];
            for (std::int64_t p = kv; p < kk; ++p) t += as[x][p] * bs[y][p];
            c[(i + x) * ldc + j + y] += t;
          }
      }
      for (; i < m; ++i)
        for (std::int64_t y = 0; y < 3; ++y) {
          const float* ar = a + i * lda + p0;
          const float* br = b0 + y * ldb;
          __m256 acc = _mm256_setzero_ps();
          for (std::int64_t p = 0; p < kv; p += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(ar + p), _mm256_loadu_ps(br + p), acc);
          float t = hsum(acc);
          for (std::int64_t p = kv; p < kk; ++p) t += ar[p] * br[p];
          c[i * ldc + j + y] += t;
        }
    }
    for (; j < n; ++j)
      for (std::int64_t i = 0; i < m; ++i) {
        const float* ar = a + i * lda + p0;
        const float* br = b + j * ldb + p0;
        __m256 acc = _mm256_setzero_ps();
        for (std::int64_t p = 0; p < kv; p += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(ar + p), _mm256_loadu_ps(br + p), acc);
        float t = hsum(acc);
        for (std::int64_t p = kv; p < kk; ++p) t += ar[p] * br[p];
        c[i * ldc + j] += t;
      }
  }
}

/// B [k x n] whose columns are gathered by pointer and are contiguous along k in runs of `run` values,
/// `stride` apart: B(p, j) = columns[j][(p / run) * stride + p % run] (conv's implicit weight gradient:
/// column (c, ki, kj) of im2colᵀ is a shifted window of padded channel c, one run per output row).
struct GatheredColumns {
  const float* const* columns;
  std::int64_t run, stride;
};

/// Packs B[p0 .. p0 + kc) x [j0 .. j0 + nc) of a GatheredColumns operand like pack_b: NR-column panels,
/// p-major, columns past nc zero; 8 x 8 blocks within a run are transposed with AVX.
inline void pack_b(std::int64_t p0, std::int64_t kc, std::int64_t j0, std::int64_t nc, const GatheredColumns& b,
                   float* dst) {
  for (std::int64_t j = 0; j < nc; j += kNR, dst += kc * kNR) {
    const std::int64_t cols = std::min(kNR, nc - j);
    const float* const* col = b.columns + j0 + j;
    for (std::int64_t p = 0; p < kc;) {
      const std::int64_t q = p0 + p, offset = q / b.run * b.stride + q % b.run;
      const std::int64_t len = std::min(kc - p, b.run - q % b.run);  // the rest of this run
      std::int64_t r = 0;
      if (cols == kNR)
        for (; r + 8 <= len; r += 8)
          for (std::int64_t half = 0; half < kNR; half += 8) {
            __m256 v[8];
            for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(col[half + i] + offset + r);
            transpose8(v);
            for (int i = 0; i < 8; ++i) _mm256_store_ps(dst + (p + r + i) * kNR + half, v[i]);
          }
      for (; r < len; ++r)
        for (std::int64_t i = 0; i < kNR; ++i) dst[(p + r) * kNR + i] = i < cols ? col[i][offset + r] : 0.f;
      p += len;
    }
  }
}

/// C (m x n, element (i, j) at c[i * rsc + j * csc]) = (accumulate ? C : 0) + A B, where
/// `pack_block(pc, kc, jc, nc, dst)` packs B's block [pc, pc + kc) x [jc, jc + nc) as pack_b does.
template <class PackB>
void gemm_packing_b(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t rsa, std::int64_t csa,
                    const PackB& pack_block, float* c, std::int64_t rsc, std::int64_t csc, bool accumulate) {
  float* pa = buffer_a();
  float* pb = buffer_b();
  // Outside a parallel region (e.g. a single image), split the column panels across threads.
  const bool parallel = !in_parallel_region() && num_threads() > 1 && m * n * k > (1 << 21);
  for (std::int64_t jc = 0; jc < n; jc += kNC) {
    const std::int64_t nc = std::min(kNC, n - jc);
    for (std::int64_t pc = 0; pc < k; pc += kKC) {
      const std::int64_t kc = std::min(kKC, k - pc);
      pack_block(pc, kc, jc, nc, pb);
      const bool overwrite = !accumulate && pc == 0;
      for (std::int64_t ic = 0; ic < m; ic += kMC) {
        const std::int64_t mc = std::min(kMC, m - ic);
        pack_a(mc, kc, a + ic * rsa + pc * csa, rsa, csa, pa);
        const std::int64_t panels = (nc + kNR - 1) / kNR;
#pragma omp parallel for schedule(static) if (parallel)
        for (std::int64_t jp = 0; jp < panels; ++jp) {
          const std::int64_t jr = jp * kNR;
          for (std::int64_t ir = 0; ir < mc; ir += kMR)
            micro_kernel(kc, pa + ir * kc, StridedRows{pb + jr * kc, kNR}, c + (ic + ir) * rsc + (jc + jr) * csc, rsc,
                         csc, overwrite, std::min(kMR, mc - ir), std::min(kNR, nc - jr));
        }
      }
    }
  }
}

/// C (m x n, element (i, j) at c[i * rsc + j * csc]) = (accumulate ? C : 0) + A B.
inline void gemm(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t rsa, std::int64_t csa,
                 const float* b, std::int64_t rsb, std::int64_t csb, float* c, std::int64_t rsc, std::int64_t csc,
                 bool accumulate) {
  const auto pack_block = [&](std::int64_t pc, std::int64_t kc, std::int64_t jc, std::int64_t nc, float* dst) {
    pack_b(kc, nc, b + pc * rsb + jc * csb, rsb, csb, dst);
  };
  gemm_packing_b(m, n, k, a, rsa, csa, pack_block, c, rsc, csc, accumulate);
}

/// Whether C = A B with few rows of A and a B of contiguous rows (csb == 1) runs faster with B read in
/// place (gemm_unpacked_b) than packed: at most 32 rows, and either at most 16 rows or a B of at most
/// 1.5 MiB (conv's im2col bands, sized for L2). Measured on a Xeon, 1 thread: AVX-512, 0.9-2.2x the
/// faster of the packed kernel and Eigen (the most at 8-16 rows); AVX2 build, 0.95-1.5x the packed
/// kernel. From 48 rows on, the packed kernel or Eigen is as fast or faster.
inline bool unpacked_b_pays_off(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t csb) {
  return csb == 1 && m <= 32 && n >= kNR && (m <= 16 || k * n <= (std::int64_t{3} << 17));
}

/// Column runs of a product computed in pieces: run r covers n columns, read from B column r * b_step
/// on and written to C column r * c_step on (conv's implicit GEMM: one run per output row, whose B
/// columns are one row of the padded input). One run by default.
struct ColumnRuns {
  std::int64_t count = 1, b_step = 0, c_step = 0;
};

/// C (row stride ldc) = (accumulate ? C : 0) + A B for B with contiguous rows (StridedRows, or rows
/// gathered by pointer) and at most kMC rows of A: A is packed, B is read in place, kNR columns at a
/// time, each strip serving every row panel from L1 (a partial last strip is packed with zero padding).
/// With `runs`, n is the width of one run (see ColumnRuns).
template <class Rows>
void gemm_unpacked_b(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t rsa,
                     std::int64_t csa, const Rows& b, float* c, std::int64_t ldc, bool accumulate,
                     ColumnRuns runs = {}) {
  float* pa = buffer_a();
  const bool parallel = !in_parallel_region() && num_threads() > 1 && m * n * runs.count * k > (1 << 21);
  const std::int64_t strips = (n + kNR - 1) / kNR;
  for (std::int64_t pc = 0; pc < k; pc += kKC) {
    const std::int64_t kc = std::min(kKC, k - pc);
    pack_a(m, kc, a + pc * csa, rsa, csa, pa);
    const bool overwrite = !accumulate && pc == 0;
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t t = 0; t < runs.count * strips; ++t) {
      const std::int64_t r = t / strips, j = (t % strips) * kNR, cols = std::min(kNR, n - j);
      const Rows strip = b.at(pc, r * runs.b_step + j);
      float* ct = c + r * runs.c_step + j;
      if (cols < kNR) {
        float* pb = buffer_b();
        pack_partial_strip(kc, cols, strip, pb);
        for (std::int64_t ir = 0; ir < m; ir += kMR)
          micro_kernel(kc, pa + ir * kc, StridedRows{pb, kNR}, ct + ir * ldc, ldc, 1, overwrite, std::min(kMR, m - ir),
                       cols);
      } else {
        for (std::int64_t ir = 0; ir < m; ir += kMR)
          micro_kernel(kc, pa + ir * kc, strip, ct + ir * ldc, ldc, 1, overwrite, std::min(kMR, m - ir), cols);
      }
    }
  }
}

}  // namespace sgemm
#endif

/// C[m x n] = (accumulate ? C : 0) + A[m x k] B[k x n], operands as described above: gkd's AVX2 kernel
/// for float where it is compiled in and the shape is large enough to fill its panels, Eigen otherwise.
template <Real T>
void strided_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t rsa, std::int64_t csa,
                  const T* b, std::int64_t rsb, std::int64_t csb, T* c, std::int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (std::int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, T(0));
    return;
  }
#ifdef GKD_SGEMM
  if constexpr (std::is_same_v<T, float>) {
    if (sgemm::unpacked_b_pays_off(m, n, k, csb))
      return sgemm::gemm_unpacked_b(m, n, k, a, rsa, csa, sgemm::StridedRows{b, rsb}, c, ldc, accumulate);
    if (sgemm::pays_off(m, n))
      return sgemm::gemm(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, std::int64_t{1}, accumulate);
  }
#endif
  eigen_gemm(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, accumulate);
}

}  // namespace gkd::detail
