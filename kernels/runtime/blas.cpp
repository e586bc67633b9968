// SPDX-License-Identifier: Apache-2.0
#include "runtime/blas.hpp"

#include <climits>
#include <mutex>
#include <vector>

#include "check.hpp"

namespace gkd::cuda::blas {

cublasHandle_t handle(cudaStream_t stream) {
  static std::mutex mutex;
  static std::vector<cublasHandle_t> handles;  // by device ordinal; never destroyed (exit order)
  int device = 0;
  GKD_CUDA_CHECK(cudaGetDevice(&device));
  cublasHandle_t h = nullptr;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    if (handles.size() <= std::size_t(device)) handles.resize(std::size_t(device) + 1, nullptr);
    if (!handles[std::size_t(device)]) GKD_CUBLAS_CHECK(cublasCreate(&handles[std::size_t(device)]));
    h = handles[std::size_t(device)];
  }
  GKD_CUBLAS_CHECK(cublasSetStream(h, stream));
  return h;
}

void gemm_row_major(cudaStream_t stream, cublasComputeType_t compute, cudaDataType_t ab_type, bool trans_a,
                    bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const void* a,
                    std::int64_t lda, const void* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  for (std::int64_t v : {m, n, k, lda, ldb, ldc})
    GKD_CHECK(v <= INT_MAX, "cublas", "GEMM argument " << v << " exceeds cuBLAS's 32-bit limit");
  if (m == 0 || n == 0) return;
  // Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: cuBLAS gets the operands swapped.
  GKD_CUBLAS_CHECK(cublasGemmEx(handle(stream), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(n), int(m), int(k), &alpha, b, ab_type,
                                int(ldb), a, ab_type, int(lda), &beta, c, CUDA_R_32F, int(ldc), compute,
                                CUBLAS_GEMM_DEFAULT));
}

}  // namespace gkd::cuda::blas
