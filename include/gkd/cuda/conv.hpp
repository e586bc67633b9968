// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// CUDA conv2d and conv_transpose2d through cuDNN (legacy or graph API, see ConvApi): forward, input and
/// weight gradients, with groups (depthwise included), stride, padding, dilation and (transposed)
/// output_padding. The algorithm of each direction is benchmarked once per geometry, element type and
/// TF32 setting (on the real buffers, with a workspace from the caching allocator of at most 1 GiB) and
/// the fastest one that succeeded is cached, never one that converts float32 down to 16 bits; float64
/// prefers deterministic algorithms. float32 convolutions use FMA math (no TF32) unless
/// `gkd::cuda::set_allow_tf32(true)`. Under a 16-bit gkd::Autocast, conv2d runs on bfloat16 or half
/// operands (tensor cores, float32 accumulation, no FFT or Winograd transform; gkd/core/autocast.hpp),
/// falling back to float32 on the rounded values for a geometry cuDNN has no 16-bit algorithm for. With a
/// bias, its forward computes in float32 on the rounded operands, so that the bias is added before the
/// one rounding as on the CPU; its input and weight gradients run in 16 bits.
/// `gkd::conv2d` and `gkd::conv_transpose2d` reach these for GPU
/// tensors when the program links `gkd::cuda`. Needs no CUDA headers to include.
/// conv_transpose2d with output_padding >= stride (allowed when smaller than dilation) runs on an
/// input extended with zeros, since cuDNN sizes the transposed convolution by floor division.
/// @code
///   auto y = gkd::conv2d(x.cuda(), w.cuda(), b.cuda(), 1, 1);                  // 3x3, padding 1
///   auto up = gkd::conv_transpose2d(y, w2.cuda(), b2.cuda(), 2, 1, 1);        // x2 upsampling
/// @endcode
#include <cstdint>

#include "gkd/core/tensor.hpp"

namespace gkd::cuda {

/// The cuDNN interface that runs conv2d and conv_transpose2d on the GPU.
/// - Legacy: cudnnFind*AlgorithmEx as described above.
/// - Graph: cuDNN's graph (backend) API, which reaches engines the legacy API does not. cuDNN's
///   heuristics list engine configurations; those the precision forbids are dropped (down-converting
///   engines always, tensor-core (TF32) ones for strict float32, non-deterministic ones for float64
///   where a deterministic one exists), and engines compiled at run time unless no other builds (then
///   two at most); the first 8 that build within a 1 GiB workspace are timed once on the real buffers
///   and the fastest plan is cached per geometry. A geometry with no usable engine runs on the legacy API
///   (`ConvCounters::graph_to_legacy` counts those).
/// - Auto (the default): per direction and geometry, whichever of the two ran faster, timed once on the
///   real buffers after each made its own choice (where the graph API has no engine: the legacy API). On
///   an H100 the student's training step took 8.3 ms (TF32) where Legacy took 18.5 and Graph 7.6, and the
///   teacher's stayed within 5% of the faster interface (benchmarks/README.md).
/// The environment variable GKD_CUDNN_API (legacy, graph or auto) sets the initial choice.
/// @code
///   gkd::cuda::set_conv_api(gkd::cuda::ConvApi::Graph);
/// @endcode
enum class ConvApi { Legacy, Graph, Auto };
void set_conv_api(ConvApi api);
/// The current choice (reads GKD_CUDNN_API on first use; throws gkd::Error for any other value).
ConvApi conv_api();

/// How the convolution directions (forward, input gradient, weight gradient: each counts once) ran since
/// the program started or the last `reset_conv_counters()`: which interface served them and whether
/// 16-bit ones found a 16-bit algorithm. Shows, for instance, that `ConvApi::Graph` was really used. The
/// runs that ConvApi::Auto times to make its choice are not counted.
/// @code
///   gkd::cuda::reset_conv_counters();
///   auto y = gkd::conv2d(x, w);
///   assert(gkd::cuda::conv_counters().graph_to_legacy == 0);
/// @endcode
struct ConvCounters {
  std::int64_t graph_runs = 0;        ///< run through a graph-API plan
  std::int64_t legacy_runs = 0;       ///< run through the legacy API (graph_to_legacy included)
  std::int64_t graph_to_legacy = 0;   ///< under ConvApi::Graph, but no graph engine served the geometry
  std::int64_t runs_16bit = 0;        ///< run on bfloat16/half operands (either interface)
  std::int64_t no_16bit_algorithm = 0;  ///< 16-bit directions computed in float32 on the rounded values
};
ConvCounters conv_counters();
void reset_conv_counters();

/// Stride, padding, dilation (height, width) and groups of a 2-D convolution.
struct ConvParams {
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1, groups = 1;
};

/// y = conv2d(x [N, Cin, H, W], weight [Cout, Cin/groups, kh, kw]) + bias [Cout] (bias may be undefined).
template <Real T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const ConvParams& params);

/// y = conv_transpose2d(x [N, Cin, H, W], weight [Cin, Cout/groups, kh, kw]) + bias [Cout] (bias may be
/// undefined), with gkd::conv_transpose2d's output size and checks.
template <Real T>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                           const ConvParams& params, std::int64_t output_padding_h, std::int64_t output_padding_w);

}  // namespace gkd::cuda
