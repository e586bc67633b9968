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

/// Row-major GEMM with float32 results on `stream`: C[m×n] = alpha · op(A) · op(B) + beta · C, where A is
/// stored [m×k] (or [k×m] when trans_a) with leading dimension lda, B [k×n] (or [n×k] when trans_b) with
/// ldb, C with ldc. A and B hold `ab_type` elements: CUDA_R_32F with `compute` CUBLAS_COMPUTE_32F (FP32) or
/// CUBLAS_COMPUTE_32F_FAST_TF32, or CUDA_R_16BF with CUBLAS_COMPUTE_32F (bf16 products, fp32 accumulation).
/// Throws gkd::Error("cublas", ...) naming the call on failure, or when a size exceeds cuBLAS's 32-bit
/// arguments.
void gemm_row_major(cudaStream_t stream, cublasComputeType_t compute, cudaDataType_t ab_type, bool trans_a,
                    bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const void* a,
                    std::int64_t lda, const void* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);

}  // namespace gkd::cuda::blas
