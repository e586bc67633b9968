// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: one direction of a 2-D convolution through cuDNN's graph (backend) API, for
/// `gkd::cuda::ConvApi::Graph`. Per problem, cuDNN's heuristics (mode A, then the fallback list) name
/// engine configurations; those whose numerical notes the precision forbids are dropped (down-converted
/// inputs and reduced-precision sums always, tensor cores (TF32) for strict float32, non-deterministic
/// engines for float64 when a deterministic one exists); engines that compile kernels at run time
/// (NVRTC, about a second each) only when no precompiled one builds, two at most; the first few that finalise
/// within a 1 GiB workspace are timed once on the real buffers, and the fastest plan is cached.
#include <cstdint>

#include "check.hpp"
#include "gkd/core/shape.hpp"

namespace gkd::cuda::dnn {

enum class ConvDirection { Forward, BackwardData, BackwardFilter };

/// One convolution direction on packed NCHW tensors: the forward convolution maps x [xs] with filter
/// w [ws] (KCRS; groups = xs[1] / ws[1]) to y [ys].
struct ConvProblem {
  ConvDirection direction = ConvDirection::Forward;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;     ///< of x, w and y
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;  ///< of the products and sums
  bool strict = true;          ///< float32 without TF32 (no tensor-core or down-converting engines)
  bool deterministic = false;  ///< prefer deterministic engines
  Shape xs, ws, ys;
  std::int64_t stride[2] = {1, 1}, pad[2] = {0, 0}, dilation[2] = {1, 1};
};

/// The largest power of two up to 16 that divides every pointer: part of every cached choice of
/// algorithm or plan, since cuDNN may choose differently for less aligned buffers (a batch slice).
inline std::int64_t alignment_of(const void* x, const void* w, const void* y) {
  const auto bits = reinterpret_cast<std::uintptr_t>(x) | reinterpret_cast<std::uintptr_t>(w) |
                    reinterpret_cast<std::uintptr_t>(y) | std::uintptr_t{16};
  return static_cast<std::int64_t>(bits & (~bits + 1));
}

/// Runs `p` with beta = 0: Forward writes y from x and w, BackwardData writes x (dx) from w and y (dy),
/// BackwardFilter writes w (dw) from x and y (dy). Returns false, having run nothing, when the graph
/// API has no usable engine for the problem; the caller then uses the legacy API. Plans are cached
/// per problem and pointer alignment.
bool run_graph_convolution(const ConvProblem& p, void* x, void* w, void* y);

}  // namespace gkd::cuda::dnn
