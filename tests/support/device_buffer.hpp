// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Helpers of the CUDA tests that drive the standalone loss kernels on raw device pointers: a device
/// buffer that frees itself, random float inputs and the relative L2 error against a double oracle.
/// @code
///   gkd::test::DeviceBuffer<float> x(gkd::test::random_floats(n, 1));
///   CHECK(gkd::test::relative_l2(x.download(n), expected) < 1e-5);
/// @endcode
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "support/check.hpp"

namespace gkd::test {

/// cudaMalloc'ed memory for n values of T (at least one), freed on destruction.
template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(std::size_t n) {
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&ptr), sizeof(T) * std::max<std::size_t>(n, 1)) == cudaSuccess);
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    REQUIRE(cudaMemcpy(ptr, host.data(), sizeof(T) * host.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  /// The first n values, copied to the host.
  std::vector<T> download(std::size_t n) const {
    std::vector<T> host(n);
    REQUIRE(cudaMemcpy(host.data(), ptr, sizeof(T) * n, cudaMemcpyDeviceToHost) == cudaSuccess);
    return host;
  }
};

/// n normal values with standard deviation `scale` and a fixed seed, as floats.
inline std::vector<float> random_floats(std::int64_t n, std::uint64_t seed, double scale = 1.0) {
  const auto v = random<double>({n}, seed, scale).to_vector();
  return {v.begin(), v.end()};
}

/// ‖actual − expected‖ / ‖expected‖; the absolute norm ‖actual − expected‖ where ‖expected‖ is below
/// 1e-12, i.e. zero up to double round-off (a relative error there would compare noise with noise).
inline double relative_l2(const std::vector<float>& actual, const std::vector<double>& expected) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    num += (double(actual[i]) - expected[i]) * (double(actual[i]) - expected[i]);
    den += expected[i] * expected[i];
  }
  return den > 1e-24 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace gkd::test
