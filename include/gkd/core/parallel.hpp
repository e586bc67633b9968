// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The CPU executor's thread count. OpenMP lives here and in op implementations only; without
/// OpenMP every loop runs serially and `set_num_threads` is a no-op.
#ifdef _OPENMP
#include <omp.h>
#endif

namespace gkd {

/// Sets the number of CPU threads gkd's kernels use (and Eigen's GEMM, which follows OpenMP).
/// @pre n >= 1
inline void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

/// The number of CPU threads gkd's kernels use.
inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace gkd
