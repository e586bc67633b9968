// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test helpers: gradcheck with coverage logging, tensor comparison with a readable worst element,
// and random fixtures.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gkd/gkd.hpp"

namespace gkd::test {

/// Runs gkd::gradcheck, REQUIREs that it passes, and (when GKD_GRADCHECK_LOG is set) appends the
/// names of the ops it exercised to that file for the registry coverage test.
template <class F>
void require_gradcheck(F&& f, std::vector<Tensor<double>> inputs, const GradcheckOptions& options = {}) {
  const GradcheckResult report = gradcheck(std::forward<F>(f), std::move(inputs), options);
  INFO(report.message);
  REQUIRE(report.ok);
  if (const char* log = std::getenv("GKD_GRADCHECK_LOG")) {
    std::ofstream out(log, std::ios::app);
    for (const auto& op : report.ops) out << op << '\n';
  }
}

/// Largest |a_i - e_i| / max(|e_i|, floor) where floor is 1% of max|e| (so elements that cancel to
/// near zero are judged against the tensor's scale); also checks the shapes.
template <Real A, Real E>
void require_close(const Tensor<A>& actual, const Tensor<E>& expected, double tol, const std::string& what = "") {
  INFO(what << ": actual " << to_string(actual.shape()) << " expected " << to_string(expected.shape()));
  REQUIRE(actual.shape() == expected.shape());
  const auto a = actual.to_vector();
  const auto e = expected.to_vector();
  double scale = 0;
  for (auto v : e) scale = std::max(scale, std::abs(static_cast<double>(v)));
  const double floor = std::max(scale * 1e-2, 1e-300);
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(static_cast<double>(a[i]) - static_cast<double>(e[i])) /
                       std::max(std::abs(static_cast<double>(e[i])), floor);
    if (!(err <= worst)) {  // also catches NaN
      worst = err;
      at = i;
    }
  }
  INFO("worst relative error " << worst << " at flat index " << at << " (actual "
                               << (a.empty() ? 0.0 : double(a[at])) << ", expected " << (e.empty() ? 0.0 : double(e[at]))
                               << ", tolerance " << tol << ")");
  REQUIRE(worst <= tol);
}

/// Runs `f` (returning results flattened to doubles) with 1 and with 2 threads and requires
/// identical bits: the OpenMP paths use fixed per-block partial sums, independent of thread count.
template <class F>
void require_thread_count_invariant(F f) {
  const int saved = num_threads();
  set_num_threads(1);
  const std::vector<double> serial = f();
  set_num_threads(2);
  const std::vector<double> parallel = f();
  set_num_threads(saved);
  REQUIRE(serial.size() == parallel.size());
  REQUIRE(serial == parallel);
}

/// The elements of several tensors, concatenated as doubles.
template <Real T>
std::vector<double> flat(std::initializer_list<Tensor<T>> ts) {
  std::vector<double> out;
  for (const auto& t : ts)
    for (auto v : t.to_vector()) out.push_back(double(v));
  return out;
}

/// Random normal tensor with a fixed seed.
template <Real T = double>
Tensor<T> random(const Shape& shape, std::uint64_t seed, T stddev = T(1)) {
  Generator gen(seed);
  return randn<T>(shape, gen, T(0), stddev);
}

/// Class labels in [0, classes) with a fixed seed; every `every`-th position (when > 0) set to `ignore`.
inline Tensor<double> labels(const Shape& shape, std::int64_t classes, std::uint64_t seed, std::int64_t every = 0,
                             double ignore = -100) {
  Generator gen(seed);
  auto t = randint<double>(shape, classes, gen);
  if (every > 0)
    for (std::int64_t i = 0; i < t.numel(); i += every) t.data()[i] = ignore;
  return t;
}

}  // namespace gkd::test
