// SPDX-License-Identifier: Apache-2.0
#pragma once
// The cuBLAS handles of gkd::cuda (one per device) and a row-major GEMM on them. Internal to gkd::cuda.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace gkd::cuda::blas {

/// The cuBLAS handle of the current device (created on first use, never destroyed), bound to `stream`.
/// Like the rest of gkd::cuda: one host thread at a time per device.
cublasHandle_t handle(cudaStream_t stream = nullptr);

/// Row-major float32 GEMM on `stream`: C[m×n] = alpha · op(A) · op(B) + beta · C, where A is stored [m×k]
/// (or [k×m] when trans_a) with leading dimension lda, B [k×n] (or [n×k] when trans_b) with ldb, C with ldc.
/// `compute`: CUBLAS_COMPUTE_32F (FP32) or CUBLAS_COMPUTE_32F_FAST_TF32. Throws gkd::Error("cublas", ...)
/// naming the call on failure, or when a size exceeds cuBLAS's 32-bit arguments.
void gemm_row_major(cudaStream_t stream, cublasComputeType_t compute, bool trans_a, bool trans_b, std::int64_t m,
                    std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda, const float* b,
                    std::int64_t ldb, float beta, float* c, std::int64_t ldc);

}  // namespace gkd::cuda::blas
