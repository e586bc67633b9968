// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/graph_kd/: checks a CUDA runtime call and throws gkd::Error("cuda::graph_kd", ...)
/// naming the call, the runtime's reason, file and line.
#include <cuda_runtime.h>

#include <string>

#include "gkd/core/error.hpp"

namespace gkd::cuda::graph_kd_detail {

inline void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();
  ::gkd::detail::raise("cuda::graph_kd", std::string(call) + " failed: " + cudaGetErrorString(status), file, line);
}

}  // namespace gkd::cuda::graph_kd_detail

#define GKD_GRAPH_KD_CUDA(call) ::gkd::cuda::graph_kd_detail::check((call), #call, __FILE__, __LINE__)
