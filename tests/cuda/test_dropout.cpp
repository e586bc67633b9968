// SPDX-License-Identifier: Apache-2.0
// dropout and dropout2d on the GPU. The counter-based GPU mask cannot equal the CPU's Mersenne
// Twister mask, so this checks the contract instead: identity at p = 0 and in evaluation, every
// output 0 or x / (1 - p), the kept fraction (and the pair statistics of neighbours) within 5 sigma,
// whole channels for dropout2d, the backward using the forward's mask, and reproducibility from the
// generator's state.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "compare.hpp"

using gkd::Generator;
using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_close;

namespace {
/// |observed - expected| in units of the binomial standard deviation of `trials` draws.
double sigmas(double observed, double trials, double probability) {
  return std::abs(observed - trials * probability) / std::sqrt(trials * probability * (1 - probability));
}

/// Requires y (host copy) to hold, at each i, 0 or x[i] * scale; returns the kept count.
template <gkd::Real T>
std::int64_t require_zero_or_scaled(const Tensor<T>& y, const Tensor<T>& x, double p) {
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const auto yv = y.to_vector(), xv = x.to_vector();
  REQUIRE(yv.size() == xv.size());
  std::int64_t kept = 0, bad = 0;
  for (std::size_t i = 0; i < yv.size(); ++i) {
    if (yv[i] == T(0)) continue;
    ++kept;
    const T expected = xv[i] * scale;
    if (std::abs(yv[i] - expected) > std::abs(expected) * std::numeric_limits<T>::epsilon() * 4) ++bad;
  }
  REQUIRE(bad == 0);
  return kept;
}

template <gkd::Real T>
void check_dropout_statistics(double p) {
  INFO("p = " << p);
  const std::int64_t n = 1000000;
  const auto x = gkd::add(gkd::abs(random<T>({n}, 121)), T(0.1));  // no zeros: a 0 output means dropped
  Generator gen(122);
  const auto y = gkd::dropout(x.cuda(), p, true, gen);
  REQUIRE(y.device().is_cuda());
  REQUIRE(y.shape() == x.shape());
  const std::int64_t kept = require_zero_or_scaled(y, x, p);
  CHECK(sigmas(static_cast<double>(kept), static_cast<double>(n), 1 - p) < 5);
  // neighbours are independent: both of (i, i + 1) kept with probability (1 - p)^2
  const auto yv = y.to_vector();
  std::int64_t both = 0;
  for (std::size_t i = 0; i + 1 < yv.size(); i += 2) both += yv[i] != T(0) && yv[i + 1] != T(0);
  CHECK(sigmas(static_cast<double>(both), static_cast<double>(n / 2), (1 - p) * (1 - p)) < 5);
}
}  // namespace

TEST_CASE("dropout is the identity at p = 0 and in evaluation", "[cuda][dropout]") {
  const auto x = random<float>({4, 3, 5, 5}, 123).cuda();
  Generator gen(124), untouched(124);
  for (const auto& y : {gkd::dropout(x, 0.0, true, gen), gkd::dropout(x, 0.5, false, gen),
                        gkd::dropout2d(x, 0.0, true, gen), gkd::dropout2d(x, 0.5, false, gen)}) {
    REQUIRE(y.device().is_cuda());
    require_close(y, x.cpu(), 0.0, "identity");
  }
  REQUIRE(gen.next() == untouched.next());  // no draws were made
}

TEST_CASE("dropout keeps 1 - p of the elements, scaled by 1 / (1 - p)", "[cuda][dropout]") {
  check_dropout_statistics<float>(0.3);
  check_dropout_statistics<float>(0.9);
  check_dropout_statistics<double>(0.5);
}

TEST_CASE("dropout with p = 1 zeroes everything", "[cuda][dropout]") {
  Generator gen(125);
  const auto x = random<float>({1000}, 126).cuda();
  require_close(gkd::dropout(x, 1.0, true, gen), Tensor<float>::zeros({1000}), 0.0, "p = 1");
  require_close(gkd::dropout2d(x.reshape({10, 10, 10, 1}), 1.0, true, gen), Tensor<float>::zeros({10, 10, 10, 1}), 0.0,
                "dropout2d p = 1");
}

TEST_CASE("dropout2d zeroes whole channels", "[cuda][dropout]") {
  const double p = 0.4;
  const std::int64_t N = 50, C = 200, H = 3, W = 5;
  const auto x = gkd::add(gkd::abs(random<float>({N, C, H, W}, 127)), 0.1f);
  Generator gen(128);
  const auto y = gkd::dropout2d(x.cuda(), p, true, gen);
  require_zero_or_scaled(y, x, p);
  const auto yv = y.to_vector();
  std::int64_t kept_channels = 0, mixed = 0;
  for (std::int64_t c = 0; c < N * C; ++c) {
    std::int64_t kept = 0;
    for (std::int64_t k = 0; k < H * W; ++k) kept += yv[static_cast<std::size_t>(c * H * W + k)] != 0.f;
    if (kept == H * W) ++kept_channels;
    else if (kept != 0) ++mixed;
  }
  REQUIRE(mixed == 0);
  CHECK(sigmas(static_cast<double>(kept_channels), static_cast<double>(N * C), 1 - p) < 5);
}

TEST_CASE("dropout backward applies the forward's mask", "[cuda][dropout]") {
  for (const bool channels : {false, true}) {
    INFO((channels ? "dropout2d" : "dropout"));
    const double p = 0.35;
    const auto x_host = gkd::add(gkd::abs(random<double>({6, 7, 4, 9}, 129)), 0.1);
    const auto x = x_host.cuda().requires_grad();
    Generator gen(130);
    const auto y = channels ? gkd::dropout2d(x, p, true, gen) : gkd::dropout(x, p, true, gen);
    const auto g = random<double>(x_host.shape(), 131);
    y.backward(g.cuda());
    REQUIRE(x.grad().device().is_cuda());
    const auto yv = y.to_vector(), gv = g.to_vector();
    auto expected = Tensor<double>::empty(x_host.shape());
    for (std::size_t i = 0; i < yv.size(); ++i) expected.data()[i] = yv[i] != 0.0 ? gv[i] * (1.0 / (1 - p)) : 0.0;
    require_close(x.grad(), expected, 1e-15, "gradient = g * mask / (1 - p)");
  }
}

TEST_CASE("the same generator state gives the same mask", "[cuda][dropout]") {
  const auto x = random<float>({8, 16, 6, 6}, 132).cuda();
  Generator a(133), b(133);
  const auto ya = gkd::dropout(x, 0.5, true, a);
  const auto yb = gkd::dropout(x, 0.5, true, b);
  require_close(ya, yb.cpu(), 0.0, "dropout, same seed");
  require_close(gkd::dropout2d(x, 0.5, true, a), gkd::dropout2d(x, 0.5, true, b).cpu(), 0.0, "dropout2d, same state");
  // the generator advanced: the next mask differs from the first
  const auto first = ya.to_vector(), next = gkd::dropout(x, 0.5, true, a).to_vector();
  std::int64_t differ = 0;
  for (std::size_t i = 0; i < first.size(); ++i) differ += (first[i] == 0.f) != (next[i] == 0.f);
  REQUIRE(differ > 0);
}

TEST_CASE("dropout refuses a bad probability or shape on the GPU", "[cuda][dropout]") {
  Generator gen(134);
  const auto x = random<float>({2, 3, 4}, 135).cuda();
  REQUIRE_THROWS_WITH(gkd::dropout(x, 1.5, true, gen), Catch::Contains("probability p"));
  REQUIRE_THROWS_WITH(gkd::dropout2d(x, 0.5, true, gen), Catch::Contains("4-D"));
}
