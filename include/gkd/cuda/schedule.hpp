// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// How a fused distillation loss on the GPU (gkd/cuda/graph_kd.hpp, gkd/cuda/pairwise_kd.hpp) cuts its
/// N × N work. Needs no CUDA header.
///   - Tiles: 64 × 64 similarity tiles on tensor cores inside one fused kernel; nothing N × N is stored.
///     Best for many small graphs in one launch.
///   - Panels: cuBLAS computes panels of rows of the similarity matrices into the workspace, one block
///     per row reduces them, and the gradients are GEMMs of the coefficient panels: GEMM throughput, and
///     extra memory of panel height × N per panel, never N × N (the default height: default_panel_rows).
///     Best for single and large graphs (pixel graphs).
///   - SmallGraphs (graph_kd only): one block per graph holds the whole graph in shared memory (graphs of
///     at most 128 nodes: gkd::cuda::kSmallGraphsMaxNodes); one launch for the whole batch, FP32 on CUDA
///     cores, no workspace. Best for many small graphs (DCGD's star graphs).
///   - Auto: graph_kd: SmallGraphs for star and block-diagonal groups of at most 128 nodes, Panels for a
///     Full mask and for block-diagonal groups of ≥ 1024 nodes (or where the tiles' shared memory does not
///     fit the channels), Tiles otherwise; SKD / CIRKD: Panels from N = 2048 on.
/// @code
///   gkd::cuda::GraphKDConfig cfg;
///   cfg.schedule = gkd::cuda::Schedule::Panels;
/// @endcode
#include <cstdint>

namespace gkd::cuda {

enum class Schedule { Auto, Tiles, Panels, SmallGraphs };

/// Bytes of similarity panels that the default panel height may take.
inline constexpr std::int64_t kPanelBudgetBytes = std::int64_t{256} << 20;

/// The default rows per panel of the Panels schedule for panels of `row_floats` floats per row, `panels`
/// of them: the largest power of two from 512 up whose panels fit in kPanelBudgetBytes, and 512 rows where
/// not even those fit. Taller panels mean fewer, larger GEMMs: on an H100, graph_kd KL at N = 4096, C = 512
/// took 0.79 ms with 512-row panels and 0.44 ms with one 4096-row panel (benchmarks/README.md).
/// @code
///   default_panel_rows(16384, 2) == 2048;  // two 2048 × 16384 float panels: 256 MiB
///   default_panel_rows(65536, 2) == 512;   // 256 MiB already at 512 rows
/// @endcode
constexpr std::int64_t default_panel_rows(std::int64_t row_floats, std::int64_t panels) {
  const std::int64_t row_bytes = row_floats * panels * std::int64_t{sizeof(float)};
  std::int64_t rows = 512;
  while (row_bytes > 0 && 2 * rows * row_bytes <= kPanelBudgetBytes) rows *= 2;
  return rows;
}

}  // namespace gkd::cuda
