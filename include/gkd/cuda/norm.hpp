// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA batch_norm2d through cuDNN (CUDNN_BATCHNORM_SPATIAL), differentiable under the same op name
/// as gkd/ops/norm.hpp, which reaches it for GPU tensors when the program links `gkd::cuda`.
/// Training normalises with the batch statistics (cudnnBatchNormalizationForwardTraining, which
/// saves the mean and inverse standard deviation for cudnnBatchNormalizationBackward) and updates
/// the running statistics in place like the CPU op: running = (1 - momentum) * running +
/// momentum * stat, with the unbiased variance. Evaluation normalises with a snapshot of the
/// running statistics (cudnnBatchNormalizationForwardInference); its gradient treats them as
/// constants. weight and bias may be undefined (no affine transform). Needs no CUDA headers.
/// @code
///   auto y = gkd::batch_norm2d(x.cuda(), gamma.cuda(), beta.cuda(), mean.cuda(), var.cuda(), true);
/// @endcode
#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

/// Batch normalisation of x [N, C, H, W]; every tensor on x's device; see gkd::batch_norm2d.
template <Real T>
Tensor<T> batch_norm2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                       const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training, double momentum,
                       double eps);

}  // namespace gkd::cuda
