// SPDX-License-Identifier: Apache-2.0
// The AMX products of the fused losses' float tiles (gkd/ops/amx_bf16.hpp) against float64 products:
// the bfloat16 split, the three packed layouts, tiles at unaligned offsets, and float32-class accuracy.
// Where this CPU, its kernel or GKD_CPU_AMX=0 rules AMX out, the executable says so and exits with 77,
// which CTest reports as skipped (the losses then run their float32 GEMMs, which
// tests/losses/test_graph_kd.cpp covers).
#include "support/check.hpp"

#include <cstdlib>
#include <iostream>
#include <random>
#include <string_view>

#include "gkd/ops/amx_bf16.hpp"
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

/// The worst |x · y − exact| over a tile, and the worst of a serial float32 dot product on the same rows.
struct Errors {
  double amx = 0, float32 = 0;
};

void skip_without_amx() {
  if (gkd::detail::amx_bf16_available()) return;
  std::cout << "SKIPPED: no AMX-BF16 products here (the CPU, the kernel's permission, or GKD_CPU_AMX=0)\n";
  std::exit(77);
}

}  // namespace

#ifdef GKD_AMX_BF16
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

TEST_CASE("amx similarity tiles equal float64 products to float32 accuracy", "[amx]") {
  skip_without_amx();
  struct Case {
    std::int64_t n, c, i0, i1, j0, j1;
  };
  for (const Case z : {Case{1, 1, 0, 1, 0, 1}, Case{5, 4, 0, 5, 0, 5}, Case{7, 3, 2, 7, 1, 6}, Case{70, 64, 33, 70, 5, 64},
                       Case{130, 100, 0, 130, 0, 130}, Case{300, 512, 128, 256, 37, 165}, Case{256, 512, 0, 256, 0, 256}}) {
    INFO("n " << z.n << " C " << z.c << " rows " << z.i0 << ".." << z.i1 << " columns " << z.j0 << ".." << z.j1);
    const RowMatrix<float> x = unit_rows(z.n, z.c, 11 + std::uint64_t(z.n)), y = unit_rows(z.n, z.c, 12 + std::uint64_t(z.c));
    const auto rows = AmxOperand::rows(x.data(), z.n, z.c, z.c);
    for (const RowMatrix<float>* other : {&x, &y}) {  // x xᵀ (self-similarities on the diagonal) and x yᵀ
      const auto columns = AmxOperand::columns(other->data(), z.n, z.c, z.c);
      RowMatrix<float> out(z.i1 - z.i0, z.j1 - z.j0);
      gkd::detail::amx_similarity_tile(rows, columns, z.i0, z.i1, z.j0, z.j1, out);
      Errors e;
      for (std::int64_t i = z.i0; i < z.i1; ++i)
        for (std::int64_t j = z.j0; j < z.j1; ++j) {
          double exact = 0, magnitude = 0;
          float serial = 0;
          for (std::int64_t k = 0; k < z.c; ++k) {
            exact += double(x(i, k)) * double((*other)(j, k));
            magnitude += std::abs(double(x(i, k)) * double((*other)(j, k)));
            serial = std::fma(x(i, k), (*other)(j, k), serial);
          }
          const double err = std::abs(double(out(i - z.i0, j - z.j0)) - exact);
          // a float32 sum of exact products: at most (K + 1) · 2⁻²⁴ of the sum of magnitudes
          REQUIRE(err <= double(z.c + 1) * std::ldexp(magnitude, -24));
          e.amx = std::max(e.amx, err);
          e.float32 = std::max(e.float32, std::abs(double(serial) - exact));
        }
      // and in practice no worse than a float32 dot product (two parts and three products would be
      // 2⁻¹⁶-accurate: 100x worse at small C)
      INFO("worst error: AMX " << e.amx << ", serial float32 " << e.float32);
      REQUIRE(e.amx <= 2 * e.float32 + 1.2e-7);
    }
  }
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
  REQUIRE_FALSE(gkd::detail::amx_bf16_available());
}
