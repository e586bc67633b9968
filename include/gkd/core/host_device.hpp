// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `GKD_HOST_DEVICE`: marks a function that both the host compiler and nvcc compile, so that the CPU
/// path and the CUDA kernels run the same per-element mathematics. It expands to
/// `__host__ __device__` under nvcc (`__CUDACC__`) and to nothing otherwise; headers that use it need
/// no CUDA header.
/// @code
///   GKD_HOST_DEVICE inline float twice(float x) { return 2 * x; }
/// @endcode
#if defined(__CUDACC__)
#define GKD_HOST_DEVICE __host__ __device__
#else
#define GKD_HOST_DEVICE
#endif
