// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA kernels of the graph-contrastive distillation loss (the GPU side of gkd/losses/graph_kd.hpp,
/// same formulas, masks and reductions): host-side operators that validate their configuration (throwing
/// gkd::Error), report their workspace size and run forward or backward on a stream. Needs no CUDA header
/// and no nvcc to include; calling it needs `gkd::cuda` linked.
///
/// All pointers are device pointers to float32, row-major: student [n, student_channels], teacher
/// [n, teacher_channels]. `stream` is a `cudaStream_t` passed as `void*` (nullptr: the legacy default
/// stream); every launch and copy of one call is queued on it, nothing synchronises the host.
/// Algorithm: rows are L2-normalised into the workspace (padded to tiles); one launch covers every row
/// block of the whole batch (all small graphs at once, or one huge graph); each 64-row block walks its
/// 64-column tiles, computes the similarity tiles on tensor cores (wmma TF32, m16n16k8, fp32
/// accumulation; `TF32x3` splits each operand into two TF32 parts and adds three products for ≈ fp32
/// accuracy) and folds them into a per-row online log-sum-exp (gkd/losses/detail/graph_kd_tile.hpp).
/// Only two floats per row (the log-sum-exps) are stored; the backward recomputes the tiles and
/// accumulates dF̂_s = (1/τ) Σ_j (G[i, j] + G[j, i]) F̂_s[j] in shared memory (no atomics), then applies the
/// normalisation's backward. Memory: O(n · C); the n × n matrices never reach global memory.
/// Large graphs (Full and BlockDiagonal masks) run as *panels* instead: each graph is cut into panels of
/// rows (`panel_rows`); cuBLAS computes a panel's similarity rows [rows × graph size] into the workspace
/// (TF32 tensor cores, or FP32 for `TF32x3`), one block per row reduces them, and the backward recomputes
/// the panel, turns it into G in place and adds G F̂ and Gᵀ F̂_panel with two more GEMMs. Memory:
/// O(n · C + rows · graph size), never n × n. Graphs of at most kSmallGraphsMaxNodes nodes can run as
/// *small graphs* instead: one block per graph, one launch for the whole batch; it stages the graph's raw
/// rows through shared memory a chunk of channels at a time into its Gram matrices (FP32 on CUDA cores,
/// whatever `precision` says), and one thread per row computes the loss and the gradient's coefficients
/// (gkd/losses/detail/graph_kd_small.hpp); no workspace, and run_with_gradient is a single pass.
/// `schedule` picks (gkd/cuda/schedule.hpp): Auto uses small graphs for star and block-diagonal groups of
/// at most kSmallGraphsMaxNodes nodes, panels for a Full mask, for block-diagonal groups of ≥ 1024 nodes
/// and wherever the tiles' backward would not fit in shared memory, and the tiles otherwise.
/// Gradients flow to the student only (the teacher is frozen).
/// Limits: the Tiles schedule needs student_channels ≤ ~700 for the backward (its per-block accumulator
/// lives in shared memory; run() throws gkd::Error naming the limit of the device otherwise); the Panels
/// schedule has no channel limit but needs a Full or BlockDiagonal mask; the SmallGraphs schedule has no
/// channel limit but needs graphs (groups, or n for a Full mask) of at most kSmallGraphsMaxNodes nodes.
/// @code
///   gkd::cuda::GraphKDConfig cfg;
///   cfg.n = 64 * 5; cfg.student_channels = cfg.teacher_channels = 512;
///   cfg.mask = gkd::cuda::GraphKDMask::Star; cfg.group_size = 5; cfg.temperature = 0.5f;
///   gkd::cuda::GraphKDForward fwd(cfg);
///   // d_ws: fwd.workspace_bytes(); d_lse: fwd.row_lse_count() floats; d_rows: n floats; d_loss: 1 float
///   fwd.run(d_student, d_teacher, d_rows, d_lse, d_loss, d_ws, stream);
///   gkd::cuda::GraphKDBackward bwd(cfg);
///   bwd.run(d_student, d_teacher, d_lse, nullptr, 1.0f, d_grad, d_ws2, stream);
/// @endcode
#include <cstddef>
#include <cstdint>

#include "gkd/cuda/schedule.hpp"

namespace gkd::cuda {

/// The largest graph (nodes) that the SmallGraphs schedule holds in one block's shared memory.
inline constexpr std::int64_t kSmallGraphsMaxNodes = 128;

enum class GraphKDForm { KL, InfoNCE };
enum class GraphKDMask { Full, BlockDiagonal, Star };
enum class GraphKDReduction { None, Mean, Sum };
/// Arithmetic of the similarity GEMMs: TF32 (fast, ≈ 1e-3 relative in the logits), TF32x3 (≈ fp32; the
/// Panels schedule then runs its GEMMs in FP32), or BF16 (Panels: the normalised rows are rounded to
/// bfloat16 for the similarity GEMMs, fp32 accumulation, ≈ 4e-3 relative; the gradient GEMMs stay TF32).
/// BF16 is the precision for features that come out of a bf16 autocast network; the Tiles schedule does
/// not run it. The SmallGraphs schedule computes in FP32 whatever the precision.
enum class GraphKDPrecision { TF32, TF32x3, BF16 };

struct GraphKDConfig {
  std::int64_t n = 0;                 ///< nodes (rows)
  std::int64_t student_channels = 0;  ///< C_s
  std::int64_t teacher_channels = 0;  ///< C_t (== C_s for InfoNCE)
  GraphKDForm form = GraphKDForm::KL;
  GraphKDMask mask = GraphKDMask::Full;
  std::int64_t group_size = 0;        ///< BlockDiagonal / Star: nodes per group, divides n
  float temperature = 1.0f;           ///< τ > 0
  GraphKDReduction reduction = GraphKDReduction::Mean;
  GraphKDPrecision precision = GraphKDPrecision::TF32;
  float eps = 1e-12f;                 ///< norm clamp of the row normalisation
  /// gkd/cuda/schedule.hpp; Panels needs a Full or BlockDiagonal mask, SmallGraphs graphs of at most
  /// kSmallGraphsMaxNodes nodes
  Schedule schedule = Schedule::Auto;
  /// Panels: rows per similarity panel; 0 means default_panel_rows (gkd/cuda/schedule.hpp: as many as
  /// fit in 256 MiB of panels, at least 512). Capped at the graph size. Extra memory: panel_rows × (graph
  /// size rounded up to 32) floats per panel, two panels for KL and one for InfoNCE (the graph size is N
  /// for Full, group_size for BlockDiagonal).
  std::int64_t panel_rows = 0;
};

/// Throws gkd::Error unless the configuration is valid (shapes, τ, group size, InfoNCE widths).
void validate(const GraphKDConfig& config);
/// Rows with a loss term: the divisor of the Mean reduction.
std::int64_t graph_kd_rows(const GraphKDConfig& config);
/// The schedule run() uses for this configuration on the current device (Auto resolved).
Schedule graph_kd_schedule(const GraphKDConfig& config);

/// Forward: per-row losses, the saved per-row log-sum-exps and the reduced loss.
class GraphKDForward {
 public:
  explicit GraphKDForward(const GraphKDConfig& config);
  /// Bytes of device workspace run() needs (O(n · C); 0 for SmallGraphs, and workspace may then be null).
  [[nodiscard]] std::size_t workspace_bytes() const;
  /// Floats of row_lse: 2n (KL: teacher and student per row) or n (InfoNCE).
  [[nodiscard]] std::size_t row_lse_count() const;
  /// row_loss [n] (0 for rows without a term), row_lse [row_lse_count()], loss [1] (the Mean or Sum;
  /// may be nullptr, and is left untouched for reduction None).
  void run(const float* student, const float* teacher, float* row_loss, float* row_lse, float* loss,
           void* workspace, void* stream) const;
  /// Bytes of device workspace run_with_gradient() needs.
  [[nodiscard]] std::size_t gradient_workspace_bytes() const;
  /// run(), plus grad_student [n, C_s] = ∂loss/∂F_s for a unit upstream gradient (Mean or Sum reductions;
  /// scale it by the actual upstream gradient). The teacher is frozen, so the gradient can be formed in the
  /// forward pass: the Panels schedule forms it from the forward's own similarity panels (4 instead of 6
  /// GEMMs per panel for KL); the Tiles schedule runs GraphKDBackward after the forward.
  void run_with_gradient(const float* student, const float* teacher, float* row_loss, float* row_lse, float* loss,
                         float* grad_student, void* workspace, void* stream) const;

 private:
  GraphKDConfig config_;
};

/// Backward: grad_student [n, C_s] = ∂L/∂F_s.
class GraphKDBackward {
 public:
  explicit GraphKDBackward(const GraphKDConfig& config);
  [[nodiscard]] std::size_t workspace_bytes() const;
  /// row_lse from GraphKDForward::run on the same inputs. Reduction None: grad_rows [n] (device) holds
  /// ∂L/∂loss_i and grad_output is ignored; Mean / Sum: grad_rows is ignored (may be nullptr) and
  /// grad_output is the (host) upstream gradient of the scalar loss.
  void run(const float* student, const float* teacher, const float* row_lse, const float* grad_rows,
           float grad_output, float* grad_student, void* workspace, void* stream) const;

 private:
  GraphKDConfig config_;
};

}  // namespace gkd::cuda
