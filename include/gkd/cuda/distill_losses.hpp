// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The fused distillation losses as differentiable ops on CUDA tensors: what `gkd::graph_kd_loss`,
/// `graph_infonce_loss`, `similarity_mse`, `pixel_pair_kl` and `cross_recon_kd` dispatch to when their
/// inputs live on a GPU and the program links `gkd::cuda`. They run the kernels of gkd/cuda/graph_kd.hpp,
/// pairwise_kd.hpp and cross_recon_kd.hpp with workspaces from the caching allocator, on the legacy
/// default stream, and record the same op names as the CPU ops. Same formulas, options and contracts as
/// the CPU ops (the teacher is frozen: gradients flow to the student / the cross predictions only), with
/// these differences, each refused with a gkd::Error rather than approximated:
///   - float32 tensors only (the kernels compute in float32 on tensor cores);
///   - `tile` options are ignored (the kernels' tiles are fixed); `fast_float_tiles` / the default select
///     TF32 / 3xTF32 similarity tiles (3xTF32 ≈ float32 accuracy);
///   - cross_recon_kd supports Mean and Sum, not the per-pixel map (None);
///   - the backward of a scalar loss reads its upstream gradient on the host (one synchronisation).
/// Needs no CUDA header to include.
/// @code
///   auto loss = gkd::graph_kd_loss(z_student.cuda(), z_teacher.cuda(), options);  // dispatches here
///   loss.backward();
/// @endcode
#include "gkd/core/tensor.hpp"

namespace gkd {
struct GraphKDOptions;
struct SimilarityMseOptions;
struct PixelPairKlOptions;
struct CrossReconKdOptions;
}  // namespace gkd

namespace gkd::cuda {

/// graph_kd_loss (infonce false) or graph_infonce_loss (true) on CUDA tensors.
template <Real T>
Tensor<T> graph_loss(const Tensor<T>& student, const Tensor<T>& teacher, const GraphKDOptions& options, bool infonce);
template <Real T>
Tensor<T> similarity_mse(const Tensor<T>& student, const Tensor<T>& teacher, const SimilarityMseOptions& options);
template <Real T>
Tensor<T> pixel_pair_kl(const Tensor<T>& student, const Tensor<T>& teacher, const PixelPairKlOptions& options);
template <Real T>
Tensor<T> cross_recon_kd(const Tensor<T>& teacher, const Tensor<T>& cross1, const Tensor<T>& cross2,
                         const CrossReconKdOptions& options);

}  // namespace gkd::cuda
