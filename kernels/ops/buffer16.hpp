// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: device buffers of bfloat16 or half values, with which the autocast ops feed
/// cuDNN and cuBLAS 16-bit operands (tensor cores; half the memory of the float32 copies they replace).
#include <memory>

#include "check.hpp"
#include "gkd/core/autocast.hpp"

namespace gkd::cuda {

/// `n` bfloat16 or half values in device memory from the caching allocator, shared by copies (a
/// backward closure keeps its operands this way).
class Buffer16 {
 public:
  Buffer16() = default;
  /// An uninitialised buffer of n values of precision p (bf16 or f16).
  Buffer16(std::int64_t n, Precision p);
  /// src[0..n) (float32 device values) rounded to p, to nearest with ties to even, as the CPU rounds.
  static Buffer16 rounded(const float* src, std::int64_t n, Precision p);

  /// dst[0..n) = the values as float32 (exact).
  void to_float(float* dst) const;

  [[nodiscard]] void* data() const { return data_.get(); }
  [[nodiscard]] std::int64_t size() const { return n_; }
  [[nodiscard]] bool defined() const { return data_ != nullptr || n_ == 0; }
  [[nodiscard]] Precision precision() const { return p_; }
  [[nodiscard]] cudaDataType_t cuda_type() const { return p_ == Precision::bf16 ? CUDA_R_16BF : CUDA_R_16F; }
  [[nodiscard]] cudnnDataType_t cudnn_type() const {
    return p_ == Precision::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  }

 private:
  std::shared_ptr<void> data_;
  std::int64_t n_ = -1;  // -1: no buffer
  Precision p_ = Precision::bf16;
};

}  // namespace gkd::cuda
