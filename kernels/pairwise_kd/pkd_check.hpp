// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/pairwise_kd and kernels/cross_recon_kd: checks a CUDA runtime call (or the last
/// kernel launch) and throws gkd::Error("cuda", "<call> failed: <reason>") naming the call, the file
/// and the line.
#include <cuda_runtime.h>

#include <string>

#include "gkd/core/error.hpp"

#define GKD_PKD_CUDA_CHECK(call)                                                                        \
  do {                                                                                                  \
    const cudaError_t gkd_pkd_status_ = (call);                                                         \
    if (gkd_pkd_status_ != cudaSuccess) {                                                               \
      (void)cudaGetLastError();                                                                         \
      ::gkd::detail::raise("cuda", std::string(#call) + " failed: " + cudaGetErrorString(gkd_pkd_status_), \
                           __FILE__, __LINE__);                                                         \
    }                                                                                                   \
  } while (false)

/// Checks the launch of the kernel just queued, naming it.
#define GKD_PKD_CHECK_LAUNCH(kernel_name) GKD_PKD_CUDA_CHECK(((void)(kernel_name), cudaGetLastError()))
