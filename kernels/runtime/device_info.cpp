// SPDX-License-Identifier: Apache-2.0
#include <cuda_runtime.h>

#include <sstream>

#include "gkd/core/error.hpp"
#include "gkd/cuda/runtime.hpp"

namespace gkd::cuda {

int device_count() noexcept {
  int count = 0;
  // Without a driver this fails with cudaErrorInsufficientDriver or cudaErrorNoDevice: "no GPU".
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

std::string unavailable_reason() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("no usable CUDA device: ") + cudaGetErrorString(status);
  }
  return count > 0 ? std::string() : std::string("no CUDA device is present");
}

std::string describe_device(int index) {
  cudaDeviceProp prop{};
  const cudaError_t status = cudaGetDeviceProperties(&prop, index);
  GKD_CHECK(status == cudaSuccess, "cuda::describe_device",
            "device " << index << ": " << cudaGetErrorString(status));
  std::ostringstream out;
  out << prop.name << " (sm_" << prop.major << prop.minor << ", "
      << prop.totalGlobalMem / (1024 * 1024) << " MiB, " << prop.multiProcessorCount << " SMs)";
  return out.str();
}

}  // namespace gkd::cuda
