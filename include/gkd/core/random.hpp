// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Seeded random generators (uniform, normal, bernoulli). Every random op takes a Generator
/// explicitly, so that runs are reproducible from a seed and independent of thread count.
///
/// Example: `gkd::Generator gen(42); auto x = gkd::randn<float>({4, 1, 128, 128}, gen);`
#include <cstdint>
#include <random>

#include "gkd/core/tensor.hpp"

namespace gkd {

/// A seeded source of random numbers (64-bit Mersenne Twister). Copyable: a copy continues the
/// same sequence independently.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  void seed(std::uint64_t s) { engine_.seed(s); }
  /// Uniform in [lo, hi).
  double uniform(double lo = 0.0, double hi = 1.0) { return std::uniform_real_distribution<double>(lo, hi)(engine_); }
  /// Normal with the given mean and standard deviation.
  double normal(double mean = 0.0, double stddev = 1.0) { return std::normal_distribution<double>(mean, stddev)(engine_); }
  /// A raw 64-bit draw.
  std::uint64_t next() { return engine_(); }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

/// Uniform samples in [lo, hi).
template <Real T>
Tensor<T> rand(const Shape& shape, Generator& gen, T lo = T(0), T hi = T(1)) {
  Tensor<T> t = Tensor<T>::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(gen.uniform(lo, hi));
  return t;
}

/// Normal samples.
template <Real T>
Tensor<T> randn(const Shape& shape, Generator& gen, T mean = T(0), T stddev = T(1)) {
  Tensor<T> t = Tensor<T>::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(gen.normal(mean, stddev));
  return t;
}

/// 1 with probability p, else 0.
template <Real T>
Tensor<T> bernoulli(const Shape& shape, double p, Generator& gen) {
  GKD_CHECK(p >= 0.0 && p <= 1.0, "bernoulli", "probability " << p << " is outside [0, 1]");
  Tensor<T> t = Tensor<T>::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = gen.uniform() < p ? T(1) : T(0);
  return t;
}

/// Integers uniform in [0, n), stored as T (class labels, indices).
template <Real T>
Tensor<T> randint(const Shape& shape, std::int64_t n, Generator& gen) {
  GKD_CHECK(n > 0, "randint", "upper bound must be positive, got " << n);
  Tensor<T> t = Tensor<T>::empty(shape);
  std::uniform_int_distribution<std::int64_t> dist(0, n - 1);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(dist(gen.engine()));
  return t;
}

}  // namespace gkd
