// SPDX-License-Identifier: Apache-2.0
// conv2d and conv_transpose2d through cuDNN with autograd: the graph API (ops/conv_graph.hpp) when
// chosen and it has an engine, else the legacy API, where each direction's algorithm
// is benchmarked once per geometry (cudnnFind*AlgorithmEx) and cached; workspaces come from the
// caching allocator; float32 runs FMA math unless TF32 is allowed; float64 prefers deterministic
// algorithms. Under autocast they round as the CPU ops do (gkd/ops/autocast.hpp), computing in float32.
#include "gkd/cuda/conv.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "gkd/cuda/linalg.hpp"
#include "gkd/ops/conv.hpp"
#include "ops/conv_graph.hpp"
#include "ops/dnn.hpp"
#include "ops/elementwise_kernels.hpp"

namespace gkd::cuda {
namespace {

std::atomic<int> chosen_api{-1};  // -1 until GKD_CUDNN_API is read

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

/// Everything an algorithm choice depends on: element size, strict FP32 (no TF32), the input,
/// filter and output shapes, stride, padding, dilation, groups and the direction.
using GeometryKey = std::tuple<int, bool, Shape, Shape, Shape, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                               std::int64_t, std::int64_t, std::int64_t, int>;

struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

/// Upper bound of the workspace offered to the benchmark (and so to any chosen algorithm).
constexpr std::size_t kMaxWorkspace = std::size_t{1} << 30;

/// Benchmarks every algorithm of one direction once per key (cudnnFind*AlgorithmEx through `find`,
/// which runs them on the real buffers; `sizes(0, ...)` first sets the benchmark's math type) and
/// caches the fastest one that succeeded within the offered workspace: never a tensor-op (TF32) one
/// when `strict` (float32 without TF32; it then runs with FMA math, as benchmarked), and a
/// deterministic one when `deterministic` (float64) if any. The offered workspace is the largest
/// that any algorithm asks for (`sizes(algo, &bytes)`, algorithms 0..count-1), capped at
/// kMaxWorkspace, or none when the allocator cannot provide it. Falls back to algorithm 0 (FMA math).
template <class Perf, class Sizes, class Find>
Choice choose(const GeometryKey& key, bool strict, bool deterministic, int count, Sizes sizes, Find find) {
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
  find(ws->ptr, ws->bytes, kMax, &returned, perf);
  auto pick = [&](bool need_determinism) -> const Perf* {
    for (int i = 0; i < returned; ++i) {  // sorted fastest first
      const Perf& r = perf[i];
      if (r.status != CUDNN_STATUS_SUCCESS || r.memory > ws->bytes) continue;
      if (strict && (r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
        continue;
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
  }
  cache.emplace(key, choice);
  return choice;
}

/// The three cuDNN calls of one convolution geometry: input xs, filter ws, output ys.
template <Real T>
struct Convolution {
  Shape xs, ws, ys;
  ConvParams p;
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  bool strict;

  Convolution(const Shape& xs_, const Shape& ws_, const Shape& ys_, const ConvParams& p_, std::string_view op)
      : xs(xs_), ws(ws_), ys(ys_), p(p_), x(dnn::data_type<T>(), xs, op), y(dnn::data_type<T>(), ys, op),
        w(dnn::data_type<T>(), ws, op), conv(dnn::data_type<T>(), p, op),
        strict(std::is_same_v<T, float> && !allow_tf32()) {}

  GeometryKey key(Direction d) const {
    return {static_cast<int>(sizeof(T)), strict, xs, ws, ys, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h,
            p.dilation_w, p.groups, static_cast<int>(d)};
  }
  /// The math type the benchmark may use: FMA only when strict, cuDNN's default otherwise.
  void reset_math() const {
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, strict ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
  }
  static constexpr bool kDeterministic = std::is_same_v<T, double>;

  /// Runs direction `d` through the graph API when it is chosen and has an engine for this geometry.
  bool graph_api(dnn::ConvDirection d, const T* xp, const T* wp, const T* yp) const {
    if (conv_api() != ConvApi::Graph) return false;
    dnn::ConvProblem q;
    q.direction = d;
    q.type = dnn::data_type<T>();
    q.strict = strict;
    q.deterministic = kDeterministic;
    q.xs = xs, q.ws = ws, q.ys = ys;
    q.stride[0] = p.stride_h, q.stride[1] = p.stride_w;
    q.pad[0] = p.pad_h, q.pad[1] = p.pad_w;
    q.dilation[0] = p.dilation_h, q.dilation[1] = p.dilation_w;
    return dnn::run_graph_convolution(q, const_cast<T*>(xp), const_cast<T*>(wp), const_cast<T*>(yp));
  }

  /// y = conv(x, w).
  void forward(const T* xp, const T* wp, T* yp) const {
    if (graph_api(dnn::ConvDirection::Forward, xp, wp, yp)) return;
    const Choice c = choose<cudnnConvolutionFwdAlgoPerf_t>(
        key(kForward), strict, kDeterministic, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
        [&](int a, std::size_t* bytes) {
          if (a == 0) reset_math();
          return cudnnGetConvolutionForwardWorkspaceSize(dnn::handle(), x.d, w.d, conv.d, y.d,
                                                         static_cast<cudnnConvolutionFwdAlgo_t>(a), bytes);
        },
        [&](void* ws_ptr, std::size_t ws_bytes, int n, int* r, cudnnConvolutionFwdAlgoPerf_t* perf) {
          GKD_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(dnn::handle(), x.d, xp, w.d, wp, conv.d, y.d, yp, n, r,
                                                                 perf, ws_ptr, ws_bytes));
        });
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(dnn::handle(), x.d, w.d, conv.d, y.d, algo, &bytes));
    Workspace ws_(bytes);
    const T alpha = 1, beta = 0;
    GKD_CUDNN_CHECK(cudnnConvolutionForward(dnn::handle(), &alpha, x.d, xp, w.d, wp, conv.d, algo, ws_.ptr, bytes,
                                            &beta, y.d, yp));
  }

  /// dx = the input gradient of conv for output gradient g (overwritten).
  void backward_data(const T* wp, const T* gp, T* dxp) const {
    if (graph_api(dnn::ConvDirection::BackwardData, dxp, wp, gp)) return;
    const Choice c = choose<cudnnConvolutionBwdDataAlgoPerf_t>(
        key(kBackwardData), strict, kDeterministic, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
        [&](int a, std::size_t* bytes) {
          if (a == 0) reset_math();
          return cudnnGetConvolutionBackwardDataWorkspaceSize(dnn::handle(), w.d, y.d, conv.d, x.d,
                                                              static_cast<cudnnConvolutionBwdDataAlgo_t>(a), bytes);
        },
        [&](void* ws_ptr, std::size_t ws_bytes, int n, int* r, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
          GKD_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(dnn::handle(), w.d, wp, y.d, gp, conv.d, x.d, dxp,
                                                                      n, r, perf, ws_ptr, ws_bytes));
        });
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn::handle(), w.d, y.d, conv.d, x.d, algo, &bytes));
    Workspace ws_(bytes);
    const T alpha = 1, beta = 0;
    GKD_CUDNN_CHECK(cudnnConvolutionBackwardData(dnn::handle(), &alpha, w.d, wp, y.d, gp, conv.d, algo, ws_.ptr, bytes,
                                                 &beta, x.d, dxp));
  }

  /// dw = the filter gradient of conv for input x and output gradient g (overwritten).
  void backward_filter(const T* xp, const T* gp, T* dwp) const {
    if (graph_api(dnn::ConvDirection::BackwardFilter, xp, dwp, gp)) return;
    const Choice c = choose<cudnnConvolutionBwdFilterAlgoPerf_t>(
        key(kBackwardFilter), strict, kDeterministic, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        [&](int a, std::size_t* bytes) {
          if (a == 0) reset_math();
          return cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn::handle(), x.d, y.d, conv.d, w.d,
                                                                static_cast<cudnnConvolutionBwdFilterAlgo_t>(a), bytes);
        },
        [&](void* ws_ptr, std::size_t ws_bytes, int n, int* r, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
          GKD_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(dnn::handle(), x.d, xp, y.d, gp, conv.d, w.d,
                                                                        dwp, n, r, perf, ws_ptr, ws_bytes));
        });
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(
        cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn::handle(), x.d, y.d, conv.d, w.d, algo, &bytes));
    Workspace ws_(bytes);
    const T alpha = 1, beta = 0;
    GKD_CUDNN_CHECK(cudnnConvolutionBackwardFilter(dnn::handle(), &alpha, x.d, xp, y.d, gp, conv.d, algo, ws_.ptr,
                                                   bytes, &beta, w.d, dwp));
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

void set_conv_api(ConvApi api) { chosen_api.store(static_cast<int>(api)); }

ConvApi conv_api() {
  int api = chosen_api.load();
  if (api < 0) {
    const char* env = std::getenv("GKD_CUDNN_API");
    const std::string_view value = env ? env : "legacy";
    GKD_CHECK(value == "legacy" || value == "graph", "conv_api",
              "environment variable GKD_CUDNN_API is '" << value << "'; expected legacy or graph");
    api = static_cast<int>(value == "graph" ? ConvApi::Graph : ConvApi::Legacy);
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
  const Tensor<T> xc = detail::rounded_copy(x, prec);
  const Tensor<T> wc = detail::rounded_copy(weight, prec);
  Tensor<T> y = Tensor<T>::empty(ys, x.device());
  if (y.numel() > 0) {
    Convolution<T>(xs, ws, ys, p, op).forward(xc.data(), wc.data(), y.data());
    add_rounded_bias(y, bias, prec);
  }
  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record(op, y, {x, weight, bias},
                [xs_ = gw ? xc : Tensor<T>(), wts = gx ? wc : Tensor<T>(), xs, ws, ys, p, gx, gw, gb,
                 prec](const Tensor<T>& g) {
                  const Tensor<T> gc = detail::rounded_copy(g, prec);
                  Tensor<T> dx, dw, db;
                  const bool empty = gc.numel() == 0;
                  std::unique_ptr<Convolution<T>> conv =
                      empty ? nullptr : std::make_unique<Convolution<T>>(xs, ws, ys, p, "conv2d");
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
    if (!empty) Convolution<T>(ys, ws, xps, p, op).backward_data(wc.data(), xc.data(), y.data());
    add_rounded_bias(y, bias, prec);
  }
  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record(op, y, {x, weight, bias},
                [xs_ = gw ? xc : Tensor<T>(), wts = gx ? wc : Tensor<T>(), xs, xps, ws, ys, p, out_c, extended, gx, gw,
                 gb, prec](const Tensor<T>& g) {
                  const Tensor<T> gc = detail::rounded_copy(g, prec);
                  Tensor<T> dx, dw, db;
                  const bool none = gc.numel() == 0 || numel(xps) == 0;
                  std::unique_ptr<Convolution<T>> conv =
                      none ? nullptr : std::make_unique<Convolution<T>>(ys, ws, xps, p, "conv_transpose2d");
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
