// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA kernels of the tiled pair-wise distillation losses (the CPU ops and their exact formulas are in
/// `gkd/losses/pairwise_kd.hpp`): SKD similarity MSE and CIRKD cross-image pixel-pair KL, float32
/// row-major device buffers student [B, N, C_s], teacher [B, N, C_t]. Tiles schedule: similarity tiles
/// (64 × 64) on tensor cores (wmma TF32, fp32 accumulation; `precise` splits every operand into two TF32
/// parts, "3xTF32", for fp32-level similarities at 3x the tensor-core work). Panels schedule (large N):
/// cuBLAS similarity panels (default_panel_rows of gkd/cuda/schedule.hpp rows), reduced one block per row,
/// and cuBLAS gradient GEMMs. The per-element mathematics is `gkd/losses/detail/pairwise_tile.hpp`, shared
/// with the CPU path. Memory: the workspace is O(B·N·C) (+ O(B²·N) for CIRKD, + two panels of rows × N
/// floats, at most 256 MiB unless N > 65536); no N × N matrix is ever written.
///
/// **Gradients flow to the student only**; the teacher is frozen. `forward` computes the loss and,
/// when `grad_student` is not null, d loss / d student for a unit loss weight (the gradient is computed
/// in the forward pass); `backward` scales that gradient in place by the upstream gradient. All
/// pointers are device pointers; `stream` is a `cudaStream_t` passed as `void*` (nullptr: the legacy
/// default stream); calls are asynchronous on that stream. Declarations only: no CUDA header needed.
/// @code
///   gkd::cuda::PairwiseShape shape{.batch = 2, .nodes = 4096, .cs = 128, .ct = 256};
///   gkd::cuda::PairwiseArgs args{.temperature = 0.1};
///   std::size_t bytes = gkd::cuda::pixel_pair_kl_workspace(shape, args);
///   // cudaMalloc(&ws, bytes); ...
///   gkd::cuda::pixel_pair_kl_forward(d_student, d_teacher, shape, args, d_loss, d_grad, ws, bytes, stream);
///   gkd::cuda::pairwise_kd_backward(d_grad_output, d_grad, 2 * 4096 * 128, stream);
/// @endcode
#include <cstddef>
#include <cstdint>

#include "gkd/cuda/schedule.hpp"

namespace gkd::cuda {

/// Sizes of one call: B graphs / images of N nodes, C_s student and C_t teacher channels.
struct PairwiseShape {
  std::int64_t batch = 1, nodes = 0, cs = 0, ct = 0;
};

/// Options: τ (CIRKD only), the normalisation eps, Mean (true) or Sum reduction, fp32-level similarities
/// (`precise`: 3xTF32 tiles, FP32 panel GEMMs), bf16 similarities (`bf16`: Panels only, the normalised
/// rows rounded to bfloat16 for the similarity GEMMs, fp32 accumulation; for features from a bf16 autocast
/// network), the schedule (gkd/cuda/schedule.hpp: Auto, Tiles or Panels; Auto: panels from N = 2048 on, or with bf16) and the
/// panels' height (0: default_panel_rows; capped at N).
struct PairwiseArgs {
  double temperature = 1.0;
  double eps = 1e-12;
  bool mean = true;
  bool precise = false;
  Schedule schedule = Schedule::Auto;
  bool bf16 = false;
  std::int64_t panel_rows = 0;
};

/// Workspace bytes that `similarity_mse_forward` needs for `shape` and `args` (its schedule, bf16 and panel_rows).
/// @throws gkd::Error for empty or negative sizes or a negative panel_rows
std::size_t similarity_mse_workspace(const PairwiseShape& shape, const PairwiseArgs& args = {});
/// Workspace bytes that `pixel_pair_kl_forward` needs for `shape` and `args` (its schedule, bf16 and panel_rows).
/// @throws gkd::Error for empty or negative sizes or a negative panel_rows
std::size_t pixel_pair_kl_workspace(const PairwiseShape& shape, const PairwiseArgs& args = {});

/// SKD: writes the loss (one float) to `loss` and, unless null, d loss / d student to `grad_student`.
/// @throws gkd::Error for bad sizes or options, null inputs, a workspace smaller than required, or a
///         CUDA error (naming the call, file and line)
void similarity_mse_forward(const float* student, const float* teacher, const PairwiseShape& shape,
                            const PairwiseArgs& args, float* loss, float* grad_student, void* workspace,
                            std::size_t workspace_bytes, void* stream = nullptr);

/// CIRKD: as `similarity_mse_forward`, for the pixel-pair KL (τ = args.temperature > 0).
void pixel_pair_kl_forward(const float* student, const float* teacher, const PairwiseShape& shape,
                           const PairwiseArgs& args, float* loss, float* grad_student, void* workspace,
                           std::size_t workspace_bytes, void* stream = nullptr);

/// Backward of either loss: grad[i] *= *grad_output (a device scalar) for the n gradient elements.
/// @throws gkd::Error for n < 0, null pointers, or a CUDA error
void pairwise_kd_backward(const float* grad_output, float* grad, std::int64_t n, void* stream = nullptr);

}  // namespace gkd::cuda
