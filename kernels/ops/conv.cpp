// SPDX-License-Identifier: Apache-2.0
// conv2d through cuDNN's legacy API with autograd: heuristic algorithm choice cached per geometry,
// workspaces from the caching allocator, FMA math for float32 unless TF32 is allowed.
#include "gkd/cuda/conv.hpp"

#include <map>
#include <mutex>
#include <tuple>

#include "check.hpp"
#include "gkd/cuda/linalg.hpp"
#include "gkd/cuda/memory.hpp"
#include "gkd/ops/conv.hpp"
#include "ops/elementwise_kernels.hpp"

namespace gkd::cuda {
namespace {

cudnnHandle_t dnn_handle() {
  static std::once_flag once;
  static cudnnHandle_t handle = nullptr;
  std::call_once(once, [] { GKD_CUDNN_CHECK(cudnnCreate(&handle)); });  // never destroyed (exit order)
  return handle;
}

template <Real T>
constexpr cudnnDataType_t dnn_type() {
  return std::is_same_v<T, float> ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

int narrow(std::int64_t v) {
  GKD_CHECK(v >= 0 && v <= INT32_MAX, "conv2d", "size " << v << " exceeds cuDNN's 32-bit limit");
  return static_cast<int>(v);
}

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(cudnnDataType_t type, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
    GKD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    GKD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, type, narrow(n), narrow(c), narrow(h), narrow(w)));
  }
  ~TensorDesc() { (void)cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(cudnnDataType_t type, const Shape& s) {
    GKD_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    GKD_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, type, CUDNN_TENSOR_NCHW, narrow(s[0]), narrow(s[1]), narrow(s[2]),
                                               narrow(s[3])));
  }
  ~FilterDesc() { (void)cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(cudnnDataType_t type, const ConvParams& p) {
    GKD_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    GKD_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, narrow(p.pad_h), narrow(p.pad_w), narrow(p.stride_h),
                                                    narrow(p.stride_w), narrow(p.dilation_h), narrow(p.dilation_w),
                                                    CUDNN_CROSS_CORRELATION, type));
    GKD_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, narrow(p.groups)));
  }
  ~ConvDesc() { (void)cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

/// Device scratch from the caching allocator, returned when the scope ends (stream-ordered reuse).
struct Workspace {
  void* ptr = nullptr;
  std::size_t bytes = 0;
  explicit Workspace(std::size_t n) : ptr(n ? allocate(n) : nullptr), bytes(n) {}
  ~Workspace() { deallocate(ptr); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

/// Everything an algorithm choice depends on.
using GeometryKey = std::tuple<int, bool, Shape, Shape, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                               std::int64_t, std::int64_t, std::int64_t, int>;

struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

/// Picks the first heuristic result that succeeded and whose math is allowed (FMA for float32
/// without TF32), caching it per geometry and direction; falls back to algorithm 0 with FMA math.
template <class Perf, class Query>
Choice choose(const GeometryKey& key, bool strict_fp32, Query query) {
  static std::mutex mutex;
  static std::map<GeometryKey, Choice> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  constexpr int kMax = 16;
  Perf perf[kMax];
  int returned = 0;
  query(kMax, &returned, perf);
  Choice choice;
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (strict_fp32 && perf[i].mathType != CUDNN_FMA_MATH) continue;
    choice.algo = static_cast<int>(perf[i].algo);
    choice.math = perf[i].mathType;
    break;
  }
  cache.emplace(key, choice);
  return choice;
}

enum Direction { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };

/// The three cuDNN calls of one convolution geometry.
template <Real T>
struct Convolution {
  Shape xs, ws, ys;
  ConvParams p;
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  bool strict;

  Convolution(const Shape& xs_, const Shape& ws_, const Shape& ys_, const ConvParams& p_)
      : xs(xs_), ws(ws_), ys(ys_), p(p_), x(dnn_type<T>(), xs[0], xs[1], xs[2], xs[3]),
        y(dnn_type<T>(), ys[0], ys[1], ys[2], ys[3]), w(dnn_type<T>(), ws), conv(dnn_type<T>(), p),
        strict(std::is_same_v<T, float> && !allow_tf32()) {
    // Ask the heuristics for FMA algorithms when TF32 is not allowed (choose() also filters).
    if (strict) GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, CUDNN_FMA_MATH));
  }

  GeometryKey key(Direction d) const {
    return {static_cast<int>(sizeof(T)), strict, xs, ws, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h,
            p.dilation_w, p.groups, static_cast<int>(d)};
  }

  void forward(const T* xp, const T* wp, T* yp) {
    const Choice c = choose<cudnnConvolutionFwdAlgoPerf_t>(key(kForward), strict, [&](int n, int* r, auto* perf) {
      GKD_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(dnn_handle(), x.d, w.d, conv.d, y.d, n, r, perf));
    });
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(dnn_handle(), x.d, w.d, conv.d, y.d, algo, &bytes));
    Workspace ws_(bytes);
    const T alpha = 1, beta = 0;
    GKD_CUDNN_CHECK(cudnnConvolutionForward(dnn_handle(), &alpha, x.d, xp, w.d, wp, conv.d, algo, ws_.ptr, bytes, &beta,
                                            y.d, yp));
  }

  void backward_data(const T* wp, const T* gp, T* dxp) {
    const Choice c =
        choose<cudnnConvolutionBwdDataAlgoPerf_t>(key(kBackwardData), strict, [&](int n, int* r, auto* perf) {
          GKD_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn_handle(), w.d, y.d, conv.d, x.d, n, r, perf));
        });
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn_handle(), w.d, y.d, conv.d, x.d, algo, &bytes));
    Workspace ws_(bytes);
    const T alpha = 1, beta = 0;
    GKD_CUDNN_CHECK(cudnnConvolutionBackwardData(dnn_handle(), &alpha, w.d, wp, y.d, gp, conv.d, algo, ws_.ptr, bytes,
                                                 &beta, x.d, dxp));
  }

  void backward_filter(const T* xp, const T* gp, T* dwp) {
    const Choice c =
        choose<cudnnConvolutionBwdFilterAlgoPerf_t>(key(kBackwardFilter), strict, [&](int n, int* r, auto* perf) {
          GKD_CUDNN_CHECK(
              cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn_handle(), x.d, y.d, conv.d, w.d, n, r, perf));
        });
    GKD_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, c.math));
    const auto algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo);
    std::size_t bytes = 0;
    GKD_CUDNN_CHECK(
        cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn_handle(), x.d, y.d, conv.d, w.d, algo, &bytes));
    Workspace ws_(bytes);
    const T alpha = 1, beta = 0;
    GKD_CUDNN_CHECK(cudnnConvolutionBackwardFilter(dnn_handle(), &alpha, x.d, xp, y.d, gp, conv.d, algo, ws_.ptr,
                                                   bytes, &beta, w.d, dwp));
  }
};

}  // namespace

template <Real T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const ConvParams& p) {
  constexpr std::string_view op = "conv2d";
  GKD_CHECK(x.defined() && weight.defined(), op, "input or weight is an undefined tensor");
  GKD_CHECK(x.device().is_cuda() && weight.device() == x.device() && (!bias.defined() || bias.device() == x.device()),
            op, "input, weight and bias must be on one CUDA device (input on " << x.device().str() << ", weight on "
                                                                              << weight.device().str() << ")");
  GKD_CHECK(x.dim() == 4 && weight.dim() == 4, op,
            "input and weight must be 4-D, got " << to_string(x.shape()) << " and " << to_string(weight.shape()));
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

  const Tensor<T> xc = x.contiguous_copy_if_needed();
  const Tensor<T> wc = weight.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(ys, x.device());
  if (y.numel() > 0) {
    auto conv = std::make_shared<Convolution<T>>(xs, ws, ys, p);
    conv->forward(xc.data(), wc.data(), y.data());
  }
  if (bias.defined() && y.numel() > 0) {  // y[n, c, :, :] += bias[c], in place
    const Tensor<T> bc = bias.contiguous_copy_if_needed();
    const StridedPair layout = detail::strided_pair(ys, y.strides(), Strides{0, 1, 0, 0});
    launch_binary(BinaryOp::Add, y.data(), bc.data(), y.data(), y.numel(), &layout);
  }
  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record(op, y, {x, weight, bias},
                [xs_ = gw ? xc : Tensor<T>(), wts = gx ? wc : Tensor<T>(), xs, ws, ys, p, gx, gw, gb](const Tensor<T>& g) {
                  const Tensor<T> gc = g.contiguous_copy_if_needed();
                  Tensor<T> dx, dw, db;
                  const bool empty = gc.numel() == 0;
                  std::shared_ptr<Convolution<T>> conv = empty ? nullptr : std::make_shared<Convolution<T>>(xs, ws, ys, p);
                  if (gx) {
                    dx = Tensor<T>::zeros(xs, gc.device());
                    if (!empty) conv->backward_data(wts.data(), gc.data(), dx.data());
                  }
                  if (gw) {
                    dw = Tensor<T>::zeros(ws, gc.device());
                    if (!empty) conv->backward_filter(xs_.data(), gc.data(), dw.data());
                  }
                  if (gb) db = detail::sum_to(gc, Shape{1, ws[0], 1, 1}).reshape({ws[0]});
                  return std::vector<Tensor<T>>{dx, dw, db};
                });
}

template Tensor<float> conv2d<float>(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&, const ConvParams&);
template Tensor<double> conv2d<double>(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&,
                                       const ConvParams&);

}  // namespace gkd::cuda
