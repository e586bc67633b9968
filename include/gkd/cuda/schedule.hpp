// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// How a fused distillation loss on the GPU (gkd/cuda/graph_kd.hpp, gkd/cuda/pairwise_kd.hpp) cuts its
/// N × N work. Needs no CUDA header.
///   - Tiles: 64 × 64 similarity tiles on tensor cores inside one fused kernel; nothing N × N is stored.
///     Best for many small graphs in one launch.
///   - Panels: cuBLAS computes 512-row panels of the similarity matrices into the workspace, one block
///     per row reduces them, and the gradients are GEMMs of the coefficient panels: extra memory
///     O(512 · N), GEMM throughput. Best for single and large graphs (pixel graphs).
///   - Auto: graph_kd: Panels for a Full mask and for block-diagonal groups of ≥ 1024 nodes (or where the
///     tiles' shared memory does not fit the channels), Tiles for stars and small groups; SKD / CIRKD:
///     Panels from N = 2048 on.
/// @code
///   gkd::cuda::GraphKDConfig cfg;
///   cfg.schedule = gkd::cuda::Schedule::Panels;
/// @endcode
namespace gkd::cuda {

enum class Schedule { Auto, Tiles, Panels };

}  // namespace gkd::cuda
