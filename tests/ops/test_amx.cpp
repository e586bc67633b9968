// SPDX-License-Identifier: Apache-2.0
// The AMX products of the fused losses' float tiles against float64 products: the int8 fixed-point
// similarity tiles (gkd/ops/amx_int8.hpp) within their error bound, at unaligned offsets, with zero, NaN
// and extreme rows, at the longest rows; and the bfloat16-part gradient products (gkd/ops/amx_bf16.hpp):
// the split, both layouts, unaligned offsets, float32-class accuracy.
// Where this CPU, its kernel or GKD_CPU_AMX=0 rules AMX out, the executable says so and exits with 77,
// which CTest reports as skipped (the losses then run their float32 GEMMs, which
// tests/losses/test_graph_kd.cpp covers).
#include "support/check.hpp"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <iostream>
#include <random>
#include <string_view>

#include "gkd/ops/amx_bf16.hpp"
#include "gkd/ops/amx_int8.hpp"
#include "gkd/ops/linalg.hpp"

using gkd::detail::RowMatrix;

namespace {

/// Rows of unit length (the losses multiply L2-normalised rows).
RowMatrix<float> unit_rows(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal;
  RowMatrix<float> x(rows, cols);
  for (std::int64_t i = 0; i < rows; ++i) {
    double sq = 0;
    for (std::int64_t k = 0; k < cols; ++k) sq += double(x(i, k) = normal(gen)) * x(i, k);
    x.row(i) /= static_cast<float>(std::sqrt(sq));
  }
  return x;
}

void skip_without_amx() {
  if (gkd::detail::amx_available()) return;
  std::cout << "SKIPPED: no AMX products here (the CPU, the kernel's permission, or GKD_CPU_AMX=0)\n";
  std::exit(77);
}

}  // namespace

#ifdef GKD_AMX
using gkd::detail::AmxOperand;

TEST_CASE("amx split_bf16 keeps 24 significant bits in three parts", "[amx]") {
  skip_without_amx();
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<float> mantissa(-2.f, 2.f);
  std::uniform_int_distribution<int> exponent(-60, 60);
  for (int trial = 0; trial < 1000; ++trial) {
    alignas(64) float x[16];
    for (float& v : x) v = std::ldexp(mantissa(gen), exponent(gen));
    __m256i parts[3];
    gkd::detail::split_bf16(_mm512_loadu_ps(x), parts);
    alignas(32) std::uint16_t bits[3][16];
    for (int p = 0; p < 3; ++p) _mm256_store_si256(reinterpret_cast<__m256i*>(bits[p]), parts[p]);
    for (int l = 0; l < 16; ++l) {
      double sum = 0;
      for (int p = 0; p < 3; ++p) {
        const std::uint32_t u = std::uint32_t(bits[p][l]) << 16;
        float part;
        std::memcpy(&part, &u, sizeof part);
        sum += part;
      }
      INFO("x " << x[l]);
      REQUIRE(std::abs(sum - double(x[l])) <= std::ldexp(std::abs(double(x[l])), -24));
    }
  }
}

using gkd::detail::AmxDigits;

/// x yᵀ over rows [i0, i1) of x and [j0, j1) of y through the int8 digits.
RowMatrix<float> int8_tile(const RowMatrix<float>& x, const RowMatrix<float>& y, std::int64_t i0, std::int64_t i1,
                           std::int64_t j0, std::int64_t j1) {
  const AmxDigits rows(x.data(), x.rows(), x.cols(), x.cols(), AmxDigits::Layout::Rows);
  const AmxDigits columns(y.data(), y.rows(), y.cols(), y.cols(), AmxDigits::Layout::Columns);
  RowMatrix<float> out(i1 - i0, j1 - j0);
  gkd::detail::amx_similarity_tile(rows, columns, i0, i1, j0, j1, out.data(), j1 - j0);
  return out;
}

/// The error bound of gkd/ops/amx_int8.hpp's file comment for x_i · y_j, and the exact product.
struct Bounded {
  double exact = 0, bound = 0;
};
Bounded int8_bound(const RowMatrix<float>& x, std::int64_t i, const RowMatrix<float>& y, std::int64_t j) {
  double l1x = 0, l1y = 0, mx = 0, my = 0, exact = 0;
  for (std::int64_t k = 0; k < x.cols(); ++k) {
    const double a = x(i, k), b = y(j, k);
    exact += a * b;
    l1x += std::abs(a), l1y += std::abs(b);
    mx = std::max(mx, std::abs(a)), my = std::max(my, std::abs(b));
  }
  const double q = gkd::detail::kAmxFixedMax, k = double(x.cols());
  return {exact, (0.5 + std::ldexp(1.0, -30)) * (l1x * my + l1y * mx) / q + k * (std::ldexp(1.0, 23) + std::ldexp(1.0, 14) + 1) * mx * my / (q * q) +
                     std::ldexp(std::abs(exact), -23) + std::numeric_limits<float>::denorm_min()};
}

TEST_CASE("amx int8 similarity tiles are within their error bound, and typically below float32's", "[amx]") {
  skip_without_amx();
  struct Case {
    std::int64_t n, c, i0, i1, j0, j1;
  };
  double worst_int8 = 0, worst_float32 = 0;
  for (const Case z : {Case{1, 1, 0, 1, 0, 1}, Case{5, 4, 0, 5, 0, 5}, Case{7, 3, 2, 7, 1, 6}, Case{70, 64, 33, 70, 5, 64},
                       Case{130, 100, 0, 130, 0, 130}, Case{300, 512, 128, 256, 37, 165}, Case{256, 512, 0, 256, 0, 256},
                       Case{40, 1000, 3, 40, 17, 33}}) {
    INFO("n " << z.n << " C " << z.c << " rows " << z.i0 << ".." << z.i1 << " columns " << z.j0 << ".." << z.j1);
    const RowMatrix<float> x = unit_rows(z.n, z.c, 11 + std::uint64_t(z.n)), y = unit_rows(z.n, z.c, 12 + std::uint64_t(z.c));
    for (const RowMatrix<float>* other : {&x, &y}) {  // x xᵀ (self-similarities on the diagonal) and x yᵀ
      const RowMatrix<float> out = int8_tile(x, *other, z.i0, z.i1, z.j0, z.j1);
      for (std::int64_t i = z.i0; i < z.i1; ++i)
        for (std::int64_t j = z.j0; j < z.j1; ++j) {
          const Bounded b = int8_bound(x, i, *other, j);
          const double err = std::abs(double(out(i - z.i0, j - z.j0)) - b.exact);
          REQUIRE(err <= b.bound);
          float serial = 0;
          for (std::int64_t k = 0; k < z.c; ++k) serial = std::fma(x(i, k), (*other)(j, k), serial);
          if (z.c >= 64) {
            worst_int8 = std::max(worst_int8, err);
            worst_float32 = std::max(worst_float32, std::abs(double(serial) - b.exact));
          }
        }
    }
  }
  // unit rows of 64 to 1000 channels: no worse than a serial float32 dot product
  INFO("worst error: int8 digits " << worst_int8 << ", serial float32 " << worst_float32);
  REQUIRE(worst_int8 <= worst_float32);
}

TEST_CASE("amx int8 similarity tiles handle zero, tiny, huge-range and non-finite rows", "[amx]") {
  skip_without_amx();
  const std::int64_t n = 20, c = 70;
  RowMatrix<float> x = unit_rows(n, c, 3);
  x.row(1).setZero();                        // a zero row: zero similarities
  x.row(2).setConstant(1e-15f);              // tiny, and its scale is tiny too
  x.row(6).setConstant(1e-40f);              // subnormal: Q / m exceeds float's range
  x.row(3).setConstant(1e-6f), x(3, 5) = 1;  // one large value among small ones
  x(4, 9) = std::numeric_limits<float>::quiet_NaN();
  x(5, 0) = std::numeric_limits<float>::infinity();
  const RowMatrix<float> out = int8_tile(x, x, 0, n, 0, n);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      INFO("entry " << i << ", " << j);
      if (i == 4 || j == 4 || i == 5 || j == 5) {  // non-finite rows spread NaN to their rows and columns only
        REQUIRE(std::isnan(out(i, j)));
        continue;
      }
      const Bounded b = int8_bound(x, i, x, j);
      REQUIRE(std::abs(double(out(i, j)) - b.exact) <= b.bound);
      if (i == 1 || j == 1) REQUIRE(out(i, j) == 0.f);
    }
  REQUIRE(std::abs(double(out(2, 2)) - 70e-30) <= 1e-6 * 70e-30);  // relative accuracy where both rows are tiny
}

TEST_CASE("amx int8 similarity tiles take rows up to kAmxInt8MaxDepth without overflow, and refuse longer ones", "[amx]") {
  skip_without_amx();
  const std::int64_t c = gkd::detail::kAmxInt8MaxDepth;
  // rows of Q · 2⁻³¹ (the largest: the scale is 2³¹) and then 8224639 · 2⁻³¹, exact in float, whose
  // fixed-point integer 8224639 = 2¹⁶ · 125 + 2⁸ · 127 + 127 makes every digit product positive: the third
  // accumulator reaches (2 · 125 · 127 + 127²) · 32768 = 1.57e9 (of 2³¹)
  RowMatrix<float> x(2, c);
  x.row(0).setConstant(std::ldexp(8224639.f, -31));
  x(0, 0) = std::ldexp(float(gkd::detail::kAmxFixedMax), -31);
  x.row(1) = -x.row(0);
  const RowMatrix<float> out = int8_tile(x, x, 0, 2, 0, 2);
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 2; ++j) {
      const Bounded b = int8_bound(x, i, x, j);
      INFO("entry " << i << ", " << j << ": " << out(i, j) << " against " << b.exact);
      REQUIRE(std::abs(double(out(i, j)) - b.exact) <= b.bound);
      REQUIRE(std::abs(double(out(i, j)) - b.exact) <= 1e-6 * std::abs(b.exact));
    }
  const RowMatrix<float> longer = RowMatrix<float>::Ones(1, c + 1);
  REQUIRE_THROWS_AS(AmxDigits(longer.data(), 1, c + 1, c + 1, AmxDigits::Layout::Rows), gkd::Error);
}

TEST_CASE("amx tile products h·y and hᵀ·y accumulate float32-accurate gradients", "[amx]") {
  skip_without_amx();
  struct Case {
    std::int64_t n, c, m, first;
  };
  for (const Case z : {Case{1, 1, 1, 0}, Case{9, 5, 3, 4}, Case{200, 70, 40, 37}, Case{300, 512, 128, 128}, Case{300, 130, 128, 150}}) {
    for (bool transposed : {false, true}) {
      INFO("n " << z.n << " C " << z.c << " m " << z.m << " first " << z.first << (transposed ? " transposed" : ""));
      const std::int64_t depth = std::min(z.m, z.n - z.first);  // h's columns (rows when transposed) meet y's rows
      const RowMatrix<float> y = unit_rows(z.n, z.c, 5 + std::uint64_t(z.n));
      const RowMatrix<float> h = unit_rows(transposed ? depth : z.m, transposed ? z.m : depth, 6 + std::uint64_t(z.c));
      const auto pairs = AmxOperand::pairs(y.data(), z.n, z.c, z.c);
      const RowMatrix<float> start = unit_rows(z.m, z.c, 8);
      RowMatrix<float> out = start;
      gkd::detail::amx_add_tile_product(h, transposed, pairs, z.first, z.c, out.data());
      for (std::int64_t r = 0; r < z.m; ++r)
        for (std::int64_t col = 0; col < z.c; ++col) {
          double exact = double(start(r, col)), magnitude = std::abs(exact);
          for (std::int64_t k = 0; k < depth; ++k) {
            const double term = double(transposed ? h(k, r) : h(r, k)) * double(y(z.first + k, col));
            exact += term;
            magnitude += std::abs(term);
          }
          REQUIRE(std::abs(double(out(r, col)) - exact) <= double(depth + 2) * std::ldexp(magnitude, -24));
        }
    }
  }
}
#endif

// Hidden: tests/CMakeLists.txt runs it with GKD_CPU_AMX=0 in the environment.
TEST_CASE("GKD_CPU_AMX=0 switches the AMX products off", "[.amx_off]") {
  const char* env = std::getenv("GKD_CPU_AMX");
  REQUIRE(env != nullptr);
  REQUIRE(std::string_view(env) == "0");
  REQUIRE_FALSE(gkd::detail::amx_available());
}
