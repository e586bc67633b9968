// SPDX-License-Identifier: Apache-2.0
// Counter-based dropout: a stateless hash of (key, group index) decides each element's fate, so the
// forward and the backward agree without storing a mask and any thread order gives the same result.
#include "check.hpp"
#include "launch.hpp"
#include "ops/dropout_kernels.hpp"

namespace gkd::cuda {
namespace {

__device__ inline std::int64_t global_thread() {
  return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
}
__device__ inline std::int64_t grid_threads() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

/// Output k (0-based) of the SplitMix64 generator whose state starts at `key`: the state after k + 1
/// golden-ratio increments, passed through SplitMix64's finaliser.
__device__ inline std::uint64_t splitmix64(std::uint64_t key, std::uint64_t k) {
  std::uint64_t z = key + (k + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The top 53 bits as a double in [0, 1).
__device__ inline double to_unit(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

template <class T>
__global__ void dropout_kernel(const T* x, T* y, std::int64_t n, std::int64_t group, std::uint64_t key, double p,
                               T scale) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    const auto k = static_cast<std::uint64_t>(i / group);
    y[i] = to_unit(splitmix64(key, k)) >= p ? x[i] * scale : T(0);
  }
}

}  // namespace

template <class T>
void launch_dropout(const T* x, T* y, std::int64_t n, std::int64_t group, std::uint64_t key, double p, T scale) {
  if (n <= 0 || group <= 0) return;
  dropout_kernel<<<grid_for(n), kBlock>>>(x, y, n, group, key, p, scale);
  GKD_CUDA_CHECK_LAUNCH("dropout_kernel");
}

template void launch_dropout<float>(const float*, float*, std::int64_t, std::int64_t, std::uint64_t, double, float);
template void launch_dropout<double>(const double*, double*, std::int64_t, std::int64_t, std::uint64_t, double, double);

}  // namespace gkd::cuda
