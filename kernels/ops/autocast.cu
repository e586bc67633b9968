// SPDX-License-Identifier: Apache-2.0
// Rounding float32 device memory to bfloat16 or half (ties to even), for autocast.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "check.hpp"
#include "gkd/cuda/autocast.hpp"
#include "launch.hpp"

namespace gkd::cuda {
namespace {

__global__ void round_kernel(float* data, std::int64_t n, bool bf16) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    data[i] = bf16 ? __bfloat162float(__float2bfloat16_rn(data[i])) : __half2float(__float2half_rn(data[i]));
}

}  // namespace

void round_to(float* data, std::int64_t n, Precision p) {
  if (p == Precision::f32 || n <= 0) return;
  round_kernel<<<grid_for(n), kBlock>>>(data, n, p == Precision::bf16);
  GKD_CUDA_CHECK_LAUNCH("autocast round_to");
}

}  // namespace gkd::cuda
