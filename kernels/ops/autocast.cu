// SPDX-License-Identifier: Apache-2.0
// Rounding float32 device memory to bfloat16 or half (ties to even), for autocast, and the 16-bit
// buffers that feed cuDNN and cuBLAS.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "check.hpp"
#include "gkd/cuda/autocast.hpp"
#include "gkd/cuda/memory.hpp"
#include "launch.hpp"
#include "ops/buffer16.hpp"

namespace gkd::cuda {
namespace {

__global__ void round_kernel(float* data, std::int64_t n, bool bf16) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    data[i] = bf16 ? __bfloat162float(__float2bfloat16_rn(data[i])) : __half2float(__float2half_rn(data[i]));
}

/// v converted to To: float32 to bfloat16 or half rounds to nearest, ties to even; back is exact.
template <class To, class From>
__device__ To convert(From v) {
  if constexpr (std::is_same_v<To, __nv_bfloat16>) return __float2bfloat16_rn(v);
  else if constexpr (std::is_same_v<To, __half>) return __float2half_rn(v);
  else if constexpr (std::is_same_v<From, __nv_bfloat16>) return __bfloat162float(v);
  else return __half2float(v);
}

template <class To, class From>
__global__ void convert_kernel(const From* src, To* dst, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    dst[i] = convert<To>(src[i]);
}

}  // namespace

Buffer16::Buffer16(std::int64_t n, Precision p) : n_(n), p_(p) {
  GKD_CHECK(p != Precision::f32 && n >= 0, "autocast", "a 16-bit buffer needs bf16 or f16 and n >= 0");
  int device = 0;
  GKD_CUDA_CHECK(cudaGetDevice(&device));
  if (n > 0) data_ = std::shared_ptr<void>(allocate(static_cast<std::size_t>(n) * 2, device), deallocate);
}

Buffer16 Buffer16::rounded(const float* src, std::int64_t n, Precision p) {
  Buffer16 b(n, p);
  if (n == 0) return b;
  if (p == Precision::bf16)
    convert_kernel<<<grid_for(n), kBlock>>>(src, static_cast<__nv_bfloat16*>(b.data()), n);
  else
    convert_kernel<<<grid_for(n), kBlock>>>(src, static_cast<__half*>(b.data()), n);
  GKD_CUDA_CHECK_LAUNCH("autocast to 16 bits");
  return b;
}

void Buffer16::to_float(float* dst) const {
  if (n_ <= 0) return;
  if (p_ == Precision::bf16)
    convert_kernel<<<grid_for(n_), kBlock>>>(static_cast<const __nv_bfloat16*>(data()), dst, n_);
  else
    convert_kernel<<<grid_for(n_), kBlock>>>(static_cast<const __half*>(data()), dst, n_);
  GKD_CUDA_CHECK_LAUNCH("autocast to float32");
}

void round_to(float* data, std::int64_t n, Precision p) {
  if (p == Precision::f32 || n <= 0) return;
  round_kernel<<<grid_for(n), kBlock>>>(data, n, p == Precision::bf16);
  GKD_CUDA_CHECK_LAUNCH("autocast round_to");
}

}  // namespace gkd::cuda
