// SPDX-License-Identifier: Apache-2.0
// conv2d and conv_transpose2d through cuDNN with autograd: the graph API (ops/conv_graph.hpp) when
// chosen (or, under ConvApi::Auto, when it ran faster) and it has an engine, else the legacy API, where
// each direction's algorithm is benchmarked once per geometry (cudnnFind*AlgorithmEx) and cached;
// workspaces come from the caching allocator; float32 runs FMA math unless TF32 is allowed; float64
// prefers deterministic algorithms. Under autocast they round as the CPU ops do (gkd/ops/autocast.hpp);
// conv2d multiplies 16-bit operands on tensor cores (conv2d_16bit), conv_transpose2d computes in float32.
#include "gkd/cuda/conv.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>

#include "gkd/cuda/linalg.hpp"
#include "gkd/ops/conv.hpp"
#include "ops/buffer16.hpp"
#include "ops/conv_graph.hpp"
#include "ops/dnn.hpp"
#include "ops/elementwise_kernels.hpp"

namespace gkd::cuda {
namespace {

std::atomic<int> chosen_api{-1};  // -1 until GKD_CUDNN_API is read

struct Counters {
  std::atomic<std::int64_t> graph{0}, legacy{0}, graph_to_legacy{0}, runs_16bit{0}, no_16bit{0};
} counters;

using dnn::FilterDesc;
using dnn::TensorDesc;
using dnn::Workspace;

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(cudnnDataType_t type, const ConvParams& p, std::string_view op) {
    const int v[7] = {dnn::narrow(p.pad_h, op),      dnn::narrow(p.pad_w, op),      dnn::narrow(p.stride_h, op),
                      dnn::narrow(p.stride_w, op),   dnn::narrow(p.dilation_h, op), dnn::narrow(p.dilation_w, op),
                      dnn::narrow(p.groups, op)};
    GKD_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    GKD_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, v[0], v[1], v[2], v[3], v[4], v[5], CUDNN_CROSS_CORRELATION, type));
    GKD_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, v[6]));
  }
  ~ConvDesc() { (void)cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

enum Direction { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };

/// Everything an algorithm choice depends on: data type, strict FP32 (no TF32), the input,
/// filter and output shapes, stride, padding, dilation, groups, the direction and the buffers'
/// alignment (dnn::alignment_of).
using GeometryKey = std::tuple<int, bool, Shape, Shape, Shape, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                               std::int64_t, std::int64_t, std::int64_t, int, std::int64_t>;

struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  bool found = false;  // an algorithm succeeded in the benchmark
};

/// Upper bound of the workspace offered to the benchmark (and so to any chosen algorithm).
constexpr std::size_t kMaxWorkspace = std::size_t{1} << 30;

/// Whether a legacy algorithm computes through an FFT or a Winograd transform.
constexpr bool transforms(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
constexpr bool transforms(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
constexpr bool transforms(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

/// Benchmarks every algorithm of one direction once per key (cudnnFind*AlgorithmEx through `find`,
/// which runs them on the real buffers; `sizes(0, ...)` first sets the benchmark's math type) and
/// caches the fastest one that succeeded within the offered workspace: never one that converts its
/// inputs down (CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION), never a tensor-op (TF32) one when `strict`
/// (float32 without TF32; it then runs with FMA math, as benchmarked), and a
/// deterministic one when `deterministic` (float64) if any. For `half` (16-bit data) never an FFT or
/// Winograd transform, which rounds the transformed operands to 16 bits too, nor a non-deterministic
/// algorithm, which adds partial sums into the 16-bit output atomically: autocast promises the CPU's
/// roundings, the 16-bit operands' exact products summed in float32 and rounded once. The offered
/// workspace is the largest that any algorithm asks for (`sizes(algo, &bytes)`, algorithms 0..count-1), capped at
/// kMaxWorkspace, or none when the allocator cannot provide it. Falls back to algorithm 0 (FMA math)
/// with `found` false, also when the benchmark itself fails on 16-bit data (whose caller then computes
/// in float32).
template <class Perf, class Sizes, class Find>
Choice choose(const GeometryKey& key, bool strict, bool deterministic, bool half, int count, Sizes sizes,
              Find find) {
  static std::mutex mutex;
  static std::map<GeometryKey, Choice> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  std::size_t want = 0;
  for (int a = 0; a < count; ++a) {
    std::size_t bytes = 0;
    if (sizes(a, &bytes) == CUDNN_STATUS_SUCCESS) want = std::max(want, std::min(bytes, kMaxWorkspace));
  }
  std::unique_ptr<Workspace> ws;
  try {
    ws = std::make_unique<Workspace>(want);
  } catch (const Error&) {  // out of memory: benchmark the algorithms that need no workspace
    ws = std::make_unique<Workspace>(0);
  }
  constexpr int kMax = 16;
  Perf perf[kMax];
  int returned = 0;
  try {
    find(ws->ptr, ws->bytes, kMax, &returned, perf);
  } catch (const Error&) {
    if (!half) throw;
    returned = 0;
  }
  auto pick = [&](bool need_determinism) -> const Perf* {
    for (int i = 0; i < returned; ++i) {  // sorted fastest first
      const Perf& r = perf[i];
      if (r.status != CUDNN_STATUS_SUCCESS || r.memory > ws->bytes) continue;
      if (r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;  // converts float32 down to 16 bits
      if (strict && r.mathType == CUDNN_TENSOR_OP_MATH) continue;
      if (half && (transforms(r.algo) || r.determinism != CUDNN_DETERMINISTIC)) continue;
      if (need_determinism && r.determinism != CUDNN_DETERMINISTIC) continue;
      return &r;
    }
    return nullptr;
  };
  const Perf* best = deterministic ? pick(true) : nullptr;
  if (!best) best = pick(false);
  Choice choice;
  if (best) {
    choice.algo = static_cast<int>(best->algo);
    choice.math = strict ? CUDNN_FMA_MATH : best->mathType;
    choice.found = true;
  }
  cache.emplace(key, choice);
  return choice;
}

/// ConvApi::Auto's interface for one direction of one geometry (`key`), chosen once: each interface runs
/// the direction twice on the real buffers (the first run makes and caches its own choice, the second
/// is timed) and the graph API serves it where it has an engine and ran faster. Every direction
/// overwrites its output (beta = 0), so the extra runs change nothing.
template <class Graph, class Legacy>
bool auto_prefers_graph(const GeometryKey& key, Graph graph, Legacy legacy) {
  static std::mutex mutex;
  static std::map<GeometryKey, bool> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  bool prefer = graph();
  if (prefer && legacy()) {  // both interfaces can run it: the faster one
    const float graph_ms = dnn::elapsed_ms(graph), legacy_ms = dnn::elapsed_ms(legacy);
    prefer = graph_ms < legacy_ms;
  }
  cache.emplace(key, prefer);
  return prefer;
}

/// The three cuDNN calls of one convolution geometry on `data` tensors: input xs, filter ws, output ys.
/// float32 and float64 compute in their own type (float32 strictly unless TF32 is allowed); bfloat16
/// and half compute in float32 on tensor cores. Each call returns false, having run nothing, when no
/// algorithm of a 16-bit type succeeded for the geometry (float32 and float64 always run).
struct Convolution {
  Shape xs, ws, ys;
  ConvParams p;
  cudnnDataType_t data, compute;
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  bool strict, deterministic, half;

  Convolution(cudnnDataType_t data_, const Shape& xs_, const Shape& ws_, const Shape& ys_, const ConvParams& p_,
              std::string_view op)
      : xs(xs_), ws(ws_), ys(ys_), p(p_), data(data_),
        compute(data_ == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT), x(data, xs, op), y(data, ys, op),
        w(data, ws, op), conv(compute, p, op), strict(data == CUDNN_DATA_FLOAT && !allow_tf32()),
        deterministic(data == CUDNN_DATA_DOUBLE), half(data == CUDNN_DATA_BFLOAT16 || data == CUDNN_DATA_HALF) {}

  GeometryKey key(Direction d, const void* a, const void* b, const void* c) const {
    return {static_cast<int>(data), strict, xs, ws, ys, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h,
            p.dilation_w, p.groups, static_cast<int>(d), dnn::alignment_of(a, b, c)};
  }
  /// The math type the benchmark may use: FMA only when strict, tensor cores for 16-bit data, cuDNN's
  /// default otherwise.
  void reset_math() const {
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(
        conv.d, strict ? CUDNN_FMA_MATH : half ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH));
  }
  /// alpha = 1 and beta = 0 in the compute type.
  const void* one() const { return compute == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&kOneD) : &kOneF; }
  const void* zero() const { return compute == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&kZeroD) : &kZeroF; }
  static constexpr double kOneD = 1, kZeroD = 0;
  static constexpr float kOneF = 1, kZeroF = 0;

  /// Runs direction `d` through the graph API; false, having run nothing, when it has no engine for
  /// this geometry.
  bool graph_api(dnn::ConvDirection d, const void* xp, const void* wp, const void* yp) const {
    dnn::ConvProblem q;
    q.direction = d;
    q.type = data;
    q.compute = compute;
    q.strict = strict;
    q.deterministic = deterministic;
    q.xs = xs, q.ws = ws, q.ys = ys;
    q.stride[0] = p.stride_h, q.stride[1] = p.stride_w;
    q.pad[0] = p.pad_h, q.pad[1] = p.pad_w;
    q.dilation[0] = p.dilation_h, q.dilation[1] = p.dilation_w;
    return dnn::run_graph_convolution(q, const_cast<void*>(xp), const_cast<void*>(wp), const_cast<void*>(yp));
  }

  /// Runs one direction through the interface that conv_api() names, counted: `graph()` through the
  /// graph API (false: no engine; the legacy API then runs), `legacy()` through the legacy API (false:
  /// 16-bit data without a 16-bit algorithm, nothing ran; the caller computes in float32).
  template <class Graph, class Legacy>
  bool dispatch(const GeometryKey& key, Graph graph, Legacy legacy) const {
    const ConvApi api = conv_api();
    if ((api == ConvApi::Graph || (api == ConvApi::Auto && auto_prefers_graph(key, graph, legacy))) && graph()) {
      ++counters.graph;
      if (half) ++counters.runs_16bit;
      return true;
    }
    if (api == ConvApi::Graph) ++counters.graph_to_legacy;
    if (!legacy()) {
      ++counters.no_16bit;
      return false;
    }
    ++counters.legacy;
    if (half) ++counters.runs_16bit;
    return true;
  }

  /// y = conv(x, w).
  bool forward(const void* xp, const void* wp, void* yp) const {
    return dispatch(
        key(kForward, xp, wp, yp), [&] { return graph_api(dnn::ConvDirection::Forward, xp, wp, yp); },
        [&] { return legacy_forward(xp, wp, yp); });
  }
  /// dx = the input gradient of conv for output gradient g (overwritten).
  bool backward_data(const void* wp, const void* gp, void* dxp) const {
    return dispatch(
        key(kBackwardData, wp, gp, dxp), [&] { return graph_api(dnn::ConvDirection::BackwardData, dxp, wp, gp); },
        [&] { return legacy_backward_data(wp, gp, dxp); });
  }
  /// dw = the filter gradient of conv for input x and output gradient g (overwritten).
  bool backward_filter(const void* xp, const void* gp, void* dwp) const {
    return dispatch(
        key(kBackwardFilter, xp, gp, dwp), [&] { return graph_api(dnn::ConvDirection::BackwardFilter, xp, dwp, gp); },
        [&] { return legacy_backward_filter(xp, gp, dwp); });
  }

  bool legacy_forward(const void* xp, const void* wp, void* yp) const {
    const Choice c = choose<cudnnConvolutionFwdAlgoPerf_t>(
        key(kForward, xp, wp, yp), strict, deterministic, half, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
        [&](int a, std::size_t* bytes) {
          if (a == 0) reset_math();
          return cudnnGetConvolutionForwardWorkspaceSize(dnn::handle(), x.d, w.d, conv.d, y.d,
                                                         static_cast<cudnnConvolutionFwdAlgo_t>(a), bytes);
        },
        [&](void* ws_ptr, std::size_t ws_bytes, int n, int* r, cudnnConvolutionFwdAlgoPerf_t* perf) {
          GKD_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(dnn::handle(), x.d, xp, w.d, wp, conv.d, y.d, yp, n, r,
                                                                 perf, ws_ptr, ws_bytes));
        });
    if (half && !c.found) return false;
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(dnn::handle(), x.d, w.d, conv.d, y.d, algo, &bytes));
    Workspace ws_(bytes);
    GKD_CUDNN_CHECK(cudnnConvolutionForward(dnn::handle(), one(), x.d, xp, w.d, wp, conv.d, algo, ws_.ptr, bytes,
                                            zero(), y.d, yp));
    return true;
  }

  bool legacy_backward_data(const void* wp, const void* gp, void* dxp) const {
    const Choice c = choose<cudnnConvolutionBwdDataAlgoPerf_t>(
        key(kBackwardData, wp, gp, dxp), strict, deterministic, half, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
        [&](int a, std::size_t* bytes) {
          if (a == 0) reset_math();
          return cudnnGetConvolutionBackwardDataWorkspaceSize(dnn::handle(), w.d, y.d, conv.d, x.d,
                                                              static_cast<cudnnConvolutionBwdDataAlgo_t>(a), bytes);
        },
        [&](void* ws_ptr, std::size_t ws_bytes, int n, int* r, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
          GKD_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(dnn::handle(), w.d, wp, y.d, gp, conv.d, x.d, dxp,
                                                                      n, r, perf, ws_ptr, ws_bytes));
        });
    if (half && !c.found) return false;
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn::handle(), w.d, y.d, conv.d, x.d, algo, &bytes));
    Workspace ws_(bytes);
    GKD_CUDNN_CHECK(cudnnConvolutionBackwardData(dnn::handle(), one(), w.d, wp, y.d, gp, conv.d, algo, ws_.ptr, bytes,
                                                 zero(), x.d, dxp));
    return true;
  }

  bool legacy_backward_filter(const void* xp, const void* gp, void* dwp) const {
    const Choice c = choose<cudnnConvolutionBwdFilterAlgoPerf_t>(
        key(kBackwardFilter, xp, gp, dwp), strict, deterministic, half, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        [&](int a, std::size_t* bytes) {
          if (a == 0) reset_math();
          return cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn::handle(), x.d, y.d, conv.d, w.d,
                                                                static_cast<cudnnConvolutionBwdFilterAlgo_t>(a), bytes);
        },
        [&](void* ws_ptr, std::size_t ws_bytes, int n, int* r, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
          GKD_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(dnn::handle(), x.d, xp, y.d, gp, conv.d, w.d,
                                                                        dwp, n, r, perf, ws_ptr, ws_bytes));
        });
    if (half && !c.found) return false;
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(
        cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn::handle(), x.d, y.d, conv.d, w.d, algo, &bytes));
    Workspace ws_(bytes);
    GKD_CUDNN_CHECK(cudnnConvolutionBackwardFilter(dnn::handle(), one(), x.d, xp, y.d, gp, conv.d, algo, ws_.ptr,
                                                   bytes, zero(), w.d, dwp));
    return true;
  }
};

/// y[n, c, :, :] += bias[c], in place (y contiguous).
template <Real T>
void add_channel_bias(Tensor<T>& y, const Tensor<T>& bias) {
  const Tensor<T> bc = bias.contiguous_copy_if_needed();
  const StridedPair layout = detail::strided_pair(y.shape(), y.strides(), Strides{0, 1, 0, 0});
  launch_binary(BinaryOp::Add, y.data(), bc.data(), y.data(), y.numel(), &layout);
}

/// y + bias (rounded under autocast), then rounded under autocast, as on the CPU.
template <Real T>
void add_rounded_bias(Tensor<T>& y, const Tensor<T>& bias, Precision prec) {
  if (bias.defined()) add_channel_bias(y, detail::rounded_copy(bias, prec));
  detail::round_in_place(y, prec);
}

/// The values of a 16-bit buffer as a float32 tensor of `shape`.
Tensor<float> float_tensor(const Buffer16& b, const Shape& shape, Device device) {
  Tensor<float> t = Tensor<float>::empty(shape, device);
  b.to_float(t.data());
  return t;
}

/// A float32 tensor of `shape` holding a 16-bit result: `run16(out16)` writes it in 16 bits, or, when it
/// reports no 16-bit algorithm, `run32(out)` computes it in float32 on the same rounded operands and
/// the result is rounded as the CPU rounds.
template <class Run16, class Run32>
Tensor<float> result_16bit(const Shape& shape, Device device, Precision prec, Run16 run16, Run32 run32) {
  Tensor<float> out = Tensor<float>::empty(shape, device);
  const Buffer16 out16(out.numel(), prec);
  if (run16(out16.data())) {
    out16.to_float(out.data());
  } else {
    run32(out.data());
    detail::round_in_place(out, prec);
  }
  return out;
}

/// conv2d under a 16-bit autocast, on tensor cores: x, the weight and the output gradient rounded to
/// `prec` as the CPU rounds them, float32 accumulation, 16-bit results (the CPU rounds its float32
/// results to the same). With a bias the forward computes in float32 on the rounded operands, so that
/// the bias is added before the one rounding, as on the CPU; the two gradients that multiply run in
/// 16 bits either way. The backward keeps the 16-bit operands. Returns nullopt, having recorded nothing,
/// when a bias-free geometry has no 16-bit forward algorithm; a backward direction without one computes
/// in float32 on the rounded values.
std::optional<Tensor<float>> conv2d_16bit(const Tensor<float>& x, const Tensor<float>& weight,
                                          const Tensor<float>& bias, const ConvParams& p, const Shape& ys,
                                          Precision prec) {
  const Shape xs = x.shape(), ws = weight.shape();
  const Tensor<float> xc = x.contiguous_copy_if_needed(), wc = weight.contiguous_copy_if_needed();
  const Buffer16 x16 = Buffer16::rounded(xc.data(), xc.numel(), prec);
  const Buffer16 w16 = Buffer16::rounded(wc.data(), wc.numel(), prec);
  Tensor<float> y = Tensor<float>::empty(ys, x.device());
  if (y.numel() > 0 && bias.defined()) {
    Convolution(CUDNN_DATA_FLOAT, xs, ws, ys, p, "conv2d")
        .forward(float_tensor(x16, xs, x.device()).data(), float_tensor(w16, ws, x.device()).data(), y.data());
    add_rounded_bias(y, bias, prec);
  } else if (y.numel() > 0) {
    const Buffer16 y16(y.numel(), prec);
    if (!Convolution(x16.cudnn_type(), xs, ws, ys, p, "conv2d").forward(x16.data(), w16.data(), y16.data()))
      return std::nullopt;
    y16.to_float(y.data());
  }
  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record("conv2d", y, {x, weight, bias},
                [x16 = gw ? x16 : Buffer16(), w16 = gx ? w16 : Buffer16(), xs, ws, ys, p, gx, gw, gb,
                 prec](const Tensor<float>& g) {
                  const Device device = g.device();
                  std::vector<Tensor<float>> grads(3);
                  if (g.numel() == 0) {
                    if (gx) grads[0] = Tensor<float>::zeros(xs, device);
                    if (gw) grads[1] = Tensor<float>::zeros(ws, device);
                    if (gb) grads[2] = Tensor<float>::zeros({ws[0]}, device);
                    return grads;
                  }
                  const Tensor<float> gc = g.contiguous_copy_if_needed();
                  const Buffer16 g16 = Buffer16::rounded(gc.data(), gc.numel(), prec);
                  if (gb) {  // the rounded gradient's channel sums, rounded, as on the CPU
                    grads[2] = detail::sum_to(float_tensor(g16, ys, device), Shape{1, ws[0], 1, 1}).reshape({ws[0]});
                    detail::round_in_place(grads[2], prec);
                  }
                  const Convolution conv(g16.cudnn_type(), xs, ws, ys, p, "conv2d");
                  const auto conv32 = [&] { return Convolution(CUDNN_DATA_FLOAT, xs, ws, ys, p, "conv2d"); };
                  if (gx)
                    grads[0] = result_16bit(
                        xs, device, prec, [&](void* out) { return conv.backward_data(w16.data(), g16.data(), out); },
                        [&](float* out) {
                          conv32().backward_data(float_tensor(w16, ws, device).data(),
                                                 float_tensor(g16, ys, device).data(), out);
                        });
                  if (gw)
                    grads[1] = result_16bit(
                        ws, device, prec, [&](void* out) { return conv.backward_filter(x16.data(), g16.data(), out); },
                        [&](float* out) {
                          conv32().backward_filter(float_tensor(x16, xs, device).data(),
                                                   float_tensor(g16, ys, device).data(), out);
                        });
                  return grads;
                });
}

template <Real T>
void check_devices(std::string_view op, const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias) {
  GKD_CHECK(x.defined() && weight.defined(), op, "input or weight is an undefined tensor");
  GKD_CHECK(x.device().is_cuda() && weight.device() == x.device() && (!bias.defined() || bias.device() == x.device()),
            op, "input, weight and bias must be on one CUDA device (input on " << x.device().str() << ", weight on "
                                                                              << weight.device().str() << ")");
  GKD_CHECK(x.dim() == 4 && weight.dim() == 4, op,
            "input and weight must be 4-D, got " << to_string(x.shape()) << " and " << to_string(weight.shape()));
}

}  // namespace

ConvCounters conv_counters() {
  return {counters.graph.load(), counters.legacy.load(), counters.graph_to_legacy.load(), counters.runs_16bit.load(),
          counters.no_16bit.load()};
}

void reset_conv_counters() {
  for (auto* c : {&counters.graph, &counters.legacy, &counters.graph_to_legacy, &counters.runs_16bit,
                  &counters.no_16bit})
    c->store(0);
}

void set_conv_api(ConvApi api) { chosen_api.store(static_cast<int>(api)); }

ConvApi conv_api() {
  int api = chosen_api.load();
  if (api < 0) {
    const char* env = std::getenv("GKD_CUDNN_API");
    const std::string_view value = env ? env : "auto";
    GKD_CHECK(value == "legacy" || value == "graph" || value == "auto", "conv_api",
              "environment variable GKD_CUDNN_API is '" << value << "'; expected legacy, graph or auto");
    api = static_cast<int>(value == "graph" ? ConvApi::Graph : value == "auto" ? ConvApi::Auto : ConvApi::Legacy);
    int unset = -1;
    chosen_api.compare_exchange_strong(unset, api);  // a concurrent set_conv_api wins
    api = chosen_api.load();
  }
  return static_cast<ConvApi>(api);
}

template <Real T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const ConvParams& p) {
  constexpr std::string_view op = "conv2d";
  check_devices(op, x, weight, bias);
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  detail::check_conv_params(op, xs, ws, Size2(p.stride_h, p.stride_w), Size2(p.pad_h, p.pad_w),
                            Size2(p.dilation_h, p.dilation_w), p.groups);
  GKD_CHECK(xs[1] % p.groups == 0 && ws[0] % p.groups == 0 && ws[1] * p.groups == xs[1] && ws[0] > 0 && ws[1] > 0, op,
            "input " << to_string(xs) << " and weight " << to_string(ws) << " do not match with groups=" << p.groups);
  GKD_CHECK(ws[2] > 0 && ws[3] > 0, op, "weight " << to_string(ws) << " has an empty kernel");
  const std::int64_t ekh = p.dilation_h * (ws[2] - 1) + 1, ekw = p.dilation_w * (ws[3] - 1) + 1;
  GKD_CHECK(xs[2] + 2 * p.pad_h >= ekh && xs[3] + 2 * p.pad_w >= ekw, op,
            "kernel of weight " << to_string(ws) << " is larger than the padded input " << to_string(xs));
  GKD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == ws[0]), op,
            "bias " << to_string(bias.shape()) << " does not match weight " << to_string(ws));
  const Shape ys{xs[0], ws[0], (xs[2] + 2 * p.pad_h - ekh) / p.stride_h + 1, (xs[3] + 2 * p.pad_w - ekw) / p.stride_w + 1};

  const Precision prec = detail::autocast_for<T>();
  if constexpr (std::is_same_v<T, float>) {  // 16-bit tensor cores
    if (prec != Precision::f32)
      if (std::optional<Tensor<float>> y = conv2d_16bit(x, weight, bias, p, ys, prec)) return *std::move(y);
  }
  const Tensor<T> xc = detail::rounded_copy(x, prec);
  const Tensor<T> wc = detail::rounded_copy(weight, prec);
  Tensor<T> y = Tensor<T>::empty(ys, x.device());
  if (y.numel() > 0) {
    Convolution(dnn::data_type<T>(), xs, ws, ys, p, op).forward(xc.data(), wc.data(), y.data());
    add_rounded_bias(y, bias, prec);
  }
  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record(op, y, {x, weight, bias},
                [xs_ = gw ? xc : Tensor<T>(), wts = gx ? wc : Tensor<T>(), xs, ws, ys, p, gx, gw, gb,
                 prec](const Tensor<T>& g) {
                  const Tensor<T> gc = detail::rounded_copy(g, prec);
                  Tensor<T> dx, dw, db;
                  const bool empty = gc.numel() == 0;
                  std::unique_ptr<Convolution> conv =
                      empty ? nullptr : std::make_unique<Convolution>(dnn::data_type<T>(), xs, ws, ys, p, "conv2d");
                  // cuDNN overwrites its output (beta = 0); only an empty g leaves zeros to write.
                  const auto output = [&](const Shape& s) {
                    return empty ? Tensor<T>::zeros(s, gc.device()) : Tensor<T>::empty(s, gc.device());
                  };
                  if (gx) {
                    dx = output(xs);
                    if (!empty) conv->backward_data(wts.data(), gc.data(), dx.data());
                  }
                  if (gw) {
                    dw = output(ws);
                    if (!empty) conv->backward_filter(xs_.data(), gc.data(), dw.data());
                  }
                  if (gb) db = detail::sum_to(gc, Shape{1, ws[0], 1, 1}).reshape({ws[0]});
                  for (Tensor<T>* d : {&dx, &dw, &db}) detail::round_in_place(*d, prec);
                  return std::vector<Tensor<T>>{dx, dw, db};
                });
}

template <Real T>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const ConvParams& p,
                           std::int64_t output_padding_h, std::int64_t output_padding_w) {
  constexpr std::string_view op = "conv_transpose2d";
  check_devices(op, x, weight, bias);
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  const Size2 stride(p.stride_h, p.stride_w), dilation(p.dilation_h, p.dilation_w);
  const Size2 output_padding(output_padding_h, output_padding_w);
  const auto [out_c, oh, ow] = detail::conv_transpose2d_output(op, xs, ws, bias, stride, Size2(p.pad_h, p.pad_w),
                                                                output_padding, p.groups, dilation);
  // The convolution this transposes maps ys (our output) to our input with the same filter. cuDNN sizes
  // that convolution's output by floor division: (oh + 2 pad - dil (kh - 1) - 1) / stride + 1, which is
  // H unless output_padding >= stride (allowed when smaller than dilation). Then x is extended with
  // zero rows/columns to that size (they add nothing to y or to the weight gradient) and the input
  // gradient is cropped back.
  const Shape ys{xs[0], out_c, oh, ow};
  const Shape xps{xs[0], xs[1], (oh + 2 * p.pad_h - p.dilation_h * (ws[2] - 1) - 1) / p.stride_h + 1,
                  (ow + 2 * p.pad_w - p.dilation_w * (ws[3] - 1) - 1) / p.stride_w + 1};
  const bool extended = xps != xs;

  const Precision prec = detail::autocast_for<T>();
  Tensor<T> xc = detail::rounded_copy(x, prec);
  if (extended) {
    Tensor<T> xp = Tensor<T>::zeros(xps, x.device());
    if (xc.numel() > 0) detail::copy_into(xp.slice(2, 0, xs[2]).slice(3, 0, xs[3]), xc);
    xc = xp;
  }
  const Tensor<T> wc = detail::rounded_copy(weight, prec);
  const bool empty = xc.numel() == 0;  // then y is all bias
  Tensor<T> y = empty ? Tensor<T>::zeros(ys, x.device()) : Tensor<T>::empty(ys, x.device());
  if (y.numel() > 0) {
    if (!empty) Convolution(dnn::data_type<T>(), ys, ws, xps, p, op).backward_data(wc.data(), xc.data(), y.data());
    add_rounded_bias(y, bias, prec);
  }
  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record(op, y, {x, weight, bias},
                [xs_ = gw ? xc : Tensor<T>(), wts = gx ? wc : Tensor<T>(), xs, xps, ws, ys, p, out_c, extended, gx, gw,
                 gb, prec](const Tensor<T>& g) {
                  const Tensor<T> gc = detail::rounded_copy(g, prec);
                  Tensor<T> dx, dw, db;
                  const bool none = gc.numel() == 0 || numel(xps) == 0;
                  std::unique_ptr<Convolution> conv =
                      none ? nullptr : std::make_unique<Convolution>(dnn::data_type<T>(), ys, ws, xps, p, "conv_transpose2d");
                  const auto output = [&](const Shape& s) {  // as in conv2d
                    return none ? Tensor<T>::zeros(s, gc.device()) : Tensor<T>::empty(s, gc.device());
                  };
                  if (gx) {  // the input gradient is the forward convolution of g
                    dx = output(xps);
                    if (!none) conv->forward(gc.data(), wts.data(), dx.data());
                    if (extended) dx = dx.slice(2, 0, xs[2]).slice(3, 0, xs[3]).contiguous_copy_if_needed();
                  }
                  if (gw) {  // the filter gradient with g as the convolution's input and x as its output gradient
                    dw = output(ws);
                    if (!none) conv->backward_filter(gc.data(), xs_.data(), dw.data());
                  }
                  if (gb) db = detail::sum_to(gc, Shape{1, out_c, 1, 1}).reshape({out_c});
                  for (Tensor<T>* d : {&dx, &dw, &db}) detail::round_in_place(*d, prec);
                  return std::vector<Tensor<T>>{dx, dw, db};
                });
}

template Tensor<float> conv2d<float>(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&, const ConvParams&);
template Tensor<double> conv2d<double>(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&,
                                       const ConvParams&);
template Tensor<float> conv_transpose2d<float>(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&,
                                               const ConvParams&, std::int64_t, std::int64_t);
template Tensor<double> conv_transpose2d<double>(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&,
                                                 const ConvParams&, std::int64_t, std::int64_t);

}  // namespace gkd::cuda
