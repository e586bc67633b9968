// SPDX-License-Identifier: Apache-2.0
// gkd/ops/vectorised_exp.hpp against std::exp: within 1.5 ulp over float64's whole finite range of exp,
// lengths that are not multiples of the vector width, the shift, and NaN, underflow and overflow.
#include "support/check.hpp"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gkd/ops/vectorised_exp.hpp"

namespace {

/// |a − b| in units of b's last place.
double ulps(double a, double b) { return std::abs(a - b) / (std::nextafter(b, INFINITY) - b); }

}  // namespace

TEST_CASE("exp_shifted is within 1.5 ulp of std::exp", "[exp]") {
  std::mt19937_64 gen(3);
  for (const auto& [lo, hi] : {std::pair{-1.0, 1.0}, {-40.0, 0.0}, {-700.0, 700.0}, {-745.0, -700.0}}) {
    std::uniform_real_distribution<double> value(lo, hi);
    std::vector<double> x(100003), out(x.size());
    for (double& v : x) v = value(gen);
    const double shift = 0.25;
    gkd::detail::exp_shifted(x.data(), shift, out.data(), std::int64_t(x.size()));
    double worst = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
      const double expected = std::exp(x[k] - shift);
      INFO("x " << x[k] << ": " << out[k] << " against " << expected);
      if (expected < std::numeric_limits<double>::min()) REQUIRE(std::abs(out[k] - expected) <= 2 * std::numeric_limits<double>::denorm_min());
      else worst = std::max(worst, ulps(out[k], expected));
    }
    INFO("range " << lo << " … " << hi << ": worst " << worst << " ulp");
    REQUIRE(worst <= 1.5);
  }
}

TEST_CASE("exp_shifted handles every length, in place, and NaN, underflow and overflow", "[exp]") {
  for (std::int64_t n = 0; n <= 19; ++n) {
    std::vector<double> x(std::size_t(n) + 1, 7.0);  // the last value must stay untouched
    for (std::int64_t k = 0; k < n; ++k) x[std::size_t(k)] = -0.5 * double(k);
    gkd::detail::exp_shifted(x.data(), 1.0, x.data(), n);
    for (std::int64_t k = 0; k < n; ++k) REQUIRE(ulps(x[std::size_t(k)], std::exp(-0.5 * double(k) - 1.0)) <= 1.5);
    REQUIRE(x[std::size_t(n)] == 7.0);
  }
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> x = {std::numeric_limits<double>::quiet_NaN(), -800.0, -inf, 710.0, inf, 0.0};
  gkd::detail::exp_shifted(x.data(), 0.0, x.data(), std::int64_t(x.size()));
  REQUIRE(std::isnan(x[0]));
  REQUIRE(x[1] == 0.0);
  REQUIRE(x[2] == 0.0);
  REQUIRE(x[3] == inf);
  REQUIRE(x[4] == inf);
  REQUIRE(x[5] == 1.0);
}
