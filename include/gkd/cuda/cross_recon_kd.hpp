// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA kernel of DICD cross-reconstruction distillation (formula and CPU op in
/// `gkd/losses/cross_recon_kd.hpp`): one pass over float32 logits [B, K, P] (P pixels) of the
/// teacher and the two cross predictions, softmaxes, KL and gradient fused, grid-stride over pixels,
/// block reductions through CUB, a deterministic final sum. **Gradients flow to the cross
/// predictions only** (the teacher is frozen). `forward` writes the loss (Mean over B·P pixels or Sum)
/// and, unless null, d loss / d cross1 and d loss / d cross2 for a unit loss weight; `backward`
/// scales them in place by the upstream gradient (`pairwise_kd_backward` does the same for one
/// buffer). Device pointers; `stream` is a `cudaStream_t` as `void*`. No CUDA header needed.
/// @code
///   std::size_t bytes = gkd::cuda::cross_recon_kd_workspace(16, 2, 128 * 128);
///   gkd::cuda::cross_recon_kd_forward(t, x1, x2, 16, 2, 128 * 128, {.temperature = 4.0}, d_loss, g1, g2, ws, bytes);
/// @endcode
#include <cstddef>
#include <cstdint>

namespace gkd::cuda {

/// Options: τ > 0 and Mean (true) or Sum reduction.
struct CrossReconArgs {
  double temperature = 1.0;
  bool mean = true;
};

/// Workspace bytes for `cross_recon_kd_forward` on [B, K, P] logits.
/// @throws gkd::Error for empty sizes
std::size_t cross_recon_kd_workspace(std::int64_t batch, std::int64_t classes, std::int64_t pixels);

/// DICD forward (see the file comment).
/// @throws gkd::Error for bad sizes, τ, null pointers, a small workspace or a CUDA error
void cross_recon_kd_forward(const float* teacher, const float* cross1, const float* cross2, std::int64_t batch,
                            std::int64_t classes, std::int64_t pixels, const CrossReconArgs& args, float* loss,
                            float* grad1, float* grad2, void* workspace, std::size_t workspace_bytes,
                            void* stream = nullptr);

/// DICD backward: grad1 and grad2 (either may be null) *= *grad_output, n elements each.
/// @throws gkd::Error for n < 0 or a CUDA error
void cross_recon_kd_backward(const float* grad_output, float* grad1, float* grad2, std::int64_t n,
                             void* stream = nullptr);

}  // namespace gkd::cuda
