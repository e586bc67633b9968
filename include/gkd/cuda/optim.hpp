// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Fused multi-tensor optimizer updates and gradient-norm clipping on the GPU, reached through
/// `gkd::SGD`, `gkd::Adam`, `gkd::AdamW` and `gkd::clip_grad_norm` when their parameters live on a
/// CUDA device and the program links `gkd::cuda`. Including this header needs neither nvcc nor the
/// CUDA headers.
///
/// Contract: every pointer is a contiguous device array of `numel` elements on device `device`.
/// One call makes one kernel launch over all tensors: the host builds a table of the tensors (with
/// their own scalars, since step counts may differ) and a table of chunks (each block updates one
/// chunk of one tensor), copies both in one asynchronous transfer through pinned staging memory and
/// launches on the legacy default stream like every gkd kernel. The arithmetic is the CPU
/// optimizers' operation by operation, each rounded as there (`fused_multiply_add` tells whether the
/// CPU code fuses its multiply-adds), division and square root correctly rounded, so given the same
/// inputs the GPU update equals the CPU update.
/// @code
///   std::vector<gkd::cuda::SGDTensor<float>> ts{{w.data(), w.grad().data(), nullptr, w.numel(), false}};
///   gkd::cuda::sgd_step(ts, {.neg_lr = -0.1f}, /*device=*/0);   // w -= 0.1 * grad
/// @endcode
#include <cstdint>
#include <vector>

#include "gkd/core/dtype.hpp"

namespace gkd::cuda {

/// One parameter of an SGD update.
template <Real T>
struct SGDTensor {
  T* param = nullptr;
  const T* grad = nullptr;
  T* momentum_buffer = nullptr;  ///< nullptr without momentum
  std::int64_t numel = 0;
  bool first = false;  ///< the momentum buffer was just created: it becomes the direction itself
};

/// SGD's hyperparameters of one group, as the CPU optimizer casts them to T.
template <Real T>
struct SGDGroup {
  T neg_lr = 0;
  T weight_decay = 0;
  T momentum = 0;
  T keep = 1;  ///< 1 - dampening
  bool decay = false;  ///< weight_decay != 0
  bool use_momentum = false;  ///< momentum != 0
  bool nesterov = false;
  bool maximize = false;
  bool fused_multiply_add = false;
};

/// One parameter of an Adam/AdamW update, with its step-dependent scalars.
template <Real T>
struct AdamTensor {
  T* param = nullptr;
  const T* grad = nullptr;
  T* exp_avg = nullptr;
  T* exp_avg_sq = nullptr;
  T* max_exp_avg_sq = nullptr;  ///< nullptr without amsgrad
  std::int64_t numel = 0;
  T neg_step_size = 0;          ///< -lr / (1 - beta1^t)
  T bias_correction2_sqrt = 1;  ///< sqrt(1 - beta2^t)
};

/// Adam's hyperparameters of one group, as the CPU optimizer casts them to T.
template <Real T>
struct AdamGroup {
  T eps = 0;
  T weight1 = 0;  ///< 1 - beta1, the lerp weight
  T beta2 = 0;
  T one_minus_beta2 = 0;
  T weight_decay = 0;
  T shrink = 1;  ///< 1 - lr * weight_decay (decoupled)
  bool small_weight = true;  ///< |weight1| < 0.5: lerp from exp_avg, else from the gradient
  bool decay = false;  ///< weight_decay != 0
  bool decoupled = false;
  bool maximize = false;
  bool fused_multiply_add = false;
};

/// Applies one SGD step to every tensor (one launch; none when there is nothing to update).
template <Real T>
void sgd_step(const std::vector<SGDTensor<T>>& tensors, const SGDGroup<T>& group, int device);
/// Applies one Adam/AdamW step to every tensor (one launch; none when there is nothing to update).
template <Real T>
void adam_step(const std::vector<AdamTensor<T>>& tensors, const AdamGroup<T>& group, int device);

/// A gradient to measure or scale.
template <Real T>
struct GradSpan {
  T* data = nullptr;
  std::int64_t numel = 0;
};

/// The total `norm_type`-norm of the gradients as `gkd::clip_grad_norm` defines it: each gradient's
/// norm accumulated in double and rounded to T, then the norm of those norms, rounded to T (p = inf:
/// the largest magnitude; NaN propagates). One multi-tensor reduction launch and one finishing
/// launch; waits for the result. @pre norm_type > 0, tensors non-empty
template <Real T>
T grad_norm(const std::vector<GradSpan<T>>& tensors, double norm_type, int device);
/// Multiplies every element of every tensor by `coef` (one launch).
template <Real T>
void scale_grads(const std::vector<GradSpan<T>>& tensors, T coef, int device);
/// Clamps every element of every tensor to [-hi, hi] as std::clamp does (NaN stays; one launch).
template <Real T>
void clamp_grads(const std::vector<GradSpan<T>>& tensors, T hi, int device);

}  // namespace gkd::cuda
