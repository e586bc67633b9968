// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: checks every CUDA runtime, cuBLAS and cuDNN call and throws gkd::Error naming
/// the call, its error string, file and line. Needs the CUDA headers, so it is not a public header.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "gkd/core/error.hpp"

/// Throws gkd::Error("cuda", "<call> failed: <reason>") unless the runtime call returns cudaSuccess.
#define GKD_CUDA_CHECK(call)                                                                   \
  do {                                                                                         \
    const cudaError_t gkd_cuda_status_ = (call);                                               \
    if (gkd_cuda_status_ != cudaSuccess) {                                                     \
      (void)cudaGetLastError();                                                                \
      ::gkd::detail::raise("cuda", std::string(#call) + " failed: " +                          \
                                       cudaGetErrorString(gkd_cuda_status_), __FILE__, __LINE__); \
    }                                                                                          \
  } while (false)

/// Checks the launch of the kernel just queued (configuration errors surface here).
#define GKD_CUDA_CHECK_LAUNCH(kernel_name) GKD_CUDA_CHECK(cudaGetLastError())

/// Throws gkd::Error("cublas", ...) unless the cuBLAS call returns CUBLAS_STATUS_SUCCESS.
#define GKD_CUBLAS_CHECK(call)                                                                 \
  do {                                                                                         \
    const cublasStatus_t gkd_cublas_status_ = (call);                                          \
    if (gkd_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                           \
      ::gkd::detail::raise("cublas", std::string(#call) + " failed: " +                        \
                                         cublasGetStatusString(gkd_cublas_status_), __FILE__, __LINE__); \
  } while (false)

#include <cudnn.h>

/// Throws gkd::Error("cudnn", ...) unless the cuDNN call returns CUDNN_STATUS_SUCCESS.
#define GKD_CUDNN_CHECK(call)                                                                  \
  do {                                                                                         \
    const cudnnStatus_t gkd_cudnn_status_ = (call);                                            \
    if (gkd_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                             \
      ::gkd::detail::raise("cudnn", std::string(#call) + " failed: " +                         \
                                        cudnnGetErrorString(gkd_cudnn_status_), __FILE__, __LINE__); \
  } while (false)
