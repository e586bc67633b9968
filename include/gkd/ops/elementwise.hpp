// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Broadcasting elementwise arithmetic and activations, each differentiable.
///
/// Binary ops broadcast like PyTorch (trailing dims aligned, size-1 dims stretched); gradients are
/// summed back to each input's shape. Results are contiguous. Example:
/// @code
///   auto y = gkd::relu(gkd::add(gkd::mul(x, w), b));   // or: relu(x * w + b)
/// @endcode
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string_view>
#include <type_traits>

#include "gkd/core/tensor.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/elementwise.hpp"
#endif

namespace gkd {

namespace detail {

inline constexpr std::int64_t kParallelGrain = 1 << 15;

template <Real T>
void check_cpu(const Tensor<T>& t, std::string_view op) {
  GKD_CHECK(t.defined(), op, "input is an undefined tensor");
  GKD_CHECK(t.device() == kCPU, op,
            "tensor on " << t.device().str() << " given to the CPU implementation: this op has no CUDA kernel yet"
                << (GKD_DETAIL_CUDA_LINKED ? "" : " and this program is not linked with gkd::cuda"));
}

/// y[i] = f(x[i]) into a new contiguous tensor.
template <Real T, class F>
Tensor<T> map(const Tensor<T>& x, F f) {
  Tensor<T> out = Tensor<T>::empty(x.shape());
  T* y = out.data();
  const T* src = x.data();
  const std::int64_t n = x.numel();
  if (x.is_contiguous()) {
#pragma omp parallel for simd if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) y[i] = f(src[i]);
  } else {
    std::int64_t i = 0;
    strided_for_each<1>(x.shape(), {&x.strides()}, [&](const auto& o) { y[i++] = f(src[o[0]]); });
  }
  return out;
}

/// out[i] = f(a[i], b[i]) with broadcasting, into a new contiguous tensor.
template <Real T, class F>
Tensor<T> zip(const Tensor<T>& a, const Tensor<T>& b, F f, std::string_view op) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> out = Tensor<T>::empty(shape);
  T* y = out.data();
  const T* pa = a.data();
  const T* pb = b.data();
  const std::int64_t n = out.numel();
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
#pragma omp parallel for simd if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) y[i] = f(pa[i], pb[i]);
    return out;
  }
  if (b.numel() == 1 && a.shape() == shape && a.is_contiguous()) {
    const T s = pb[0];
#pragma omp parallel for simd if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) y[i] = f(pa[i], s);
    return out;
  }
  // Broadcast or strided: runs of the merged layout, with unit-stride and broadcast-scalar runs vectorised
  // (x [N, C, H, W] * a [N, C, 1, 1] is N·C runs of H·W against one value of a).
  const Strides sa = broadcast_strides(a.shape(), a.strides(), shape);
  const Strides sb = broadcast_strides(b.shape(), b.strides(), shape);
  const MergedLayout<2> m(shape, {&sa, &sb});
  const std::int64_t len = m.run_length(), runs = m.runs();
  const std::int64_t ia = m.strides[0].back(), ib = m.strides[1].back();
#pragma omp parallel for schedule(static) if (n > kParallelGrain && runs > 1)
  for (std::int64_t r = 0; r < runs; ++r) {
    const auto o = m.run_start(r);
    const T* ra = pa + o[0];
    const T* rb = pb + o[1];
    T* ry = y + r * len;
    if (ia == 1 && ib == 1) {
#pragma omp simd
      for (std::int64_t j = 0; j < len; ++j) ry[j] = f(ra[j], rb[j]);
    } else if (ia == 1 && ib == 0) {
      const T s = rb[0];
#pragma omp simd
      for (std::int64_t j = 0; j < len; ++j) ry[j] = f(ra[j], s);
    } else if (ia == 0 && ib == 1) {
      const T s = ra[0];
#pragma omp simd
      for (std::int64_t j = 0; j < len; ++j) ry[j] = f(s, rb[j]);
    } else {
      for (std::int64_t j = 0; j < len; ++j) ry[j] = f(ra[j * ia], rb[j * ib]);
    }
  }
  return out;
}

/// out[i] = f(a[i], b[i], c[i]) for three tensors broadcast to a common shape.
template <Real T, class F>
Tensor<T> zip3(const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c, F f, std::string_view op) {
  const Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), op), c.shape(), op);
  Tensor<T> out = Tensor<T>::empty(shape);
  T* y = out.data();
  if (a.shape() == shape && b.shape() == shape && c.shape() == shape && a.is_contiguous() && b.is_contiguous() &&
      c.is_contiguous()) {
    const T* pa = a.data();
    const T* pb = b.data();
    const T* pc = c.data();
    const std::int64_t n = out.numel();
#pragma omp parallel for simd if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) y[i] = f(pa[i], pb[i], pc[i]);
    return out;
  }
  const Strides sa = broadcast_strides(a.shape(), a.strides(), shape);
  const Strides sb = broadcast_strides(b.shape(), b.strides(), shape);
  const Strides sc = broadcast_strides(c.shape(), c.strides(), shape);
  const T* pa = a.data();
  const T* pb = b.data();
  const T* pc = c.data();
  std::int64_t i = 0;
  strided_for_each<3>(shape, {&sa, &sb, &sc},
                      [&](const auto& o) { y[i++] = f(pa[o[0]], pb[o[1]], pc[o[2]]); });
  return out;
}

/// What the gradient of a unary op reads besides the output gradient: the input, the output, or
/// nothing. Backward keeps only that tensor alive (relu's keeps its output, which the next op usually
/// keeps anyway).
enum class GradientReads { Input, Output, Nothing };

/// Records y = f(x) elementwise, whose input gradient is grad(g, v) (v the input or the output, as `of`
/// says), or grad(g) for GradientReads::Nothing. Write the flat pieces of piecewise gradients as a
/// select (`v > 0 ? g : T(0)`): GCC vectorises that, but not `g * (v > 0 ? 1 : 0)`, and, as in
/// PyTorch, a non-finite g does not leak through a flat piece.
template <GradientReads of, Real T, class F, class G>
Tensor<T> unary(std::string_view op, const Tensor<T>& x, F f, G grad) {
  check_cpu(x, op);
  Tensor<T> y = map(x, f);
  Tensor<T> kept = of == GradientReads::Input ? x.detach() : of == GradientReads::Output ? y.detach() : Tensor<T>();
  return record(op, y, {x}, [kept = std::move(kept), grad, op](const Tensor<T>& g) {
    if constexpr (of == GradientReads::Nothing)
      return std::vector<Tensor<T>>{map(g, grad)};
    else
      return std::vector<Tensor<T>>{zip(g, kept, grad, op)};
  });
}

}  // namespace detail

// ---- arithmetic -------------------------------------------------------------------------------------

/// a + b with broadcasting.
template <Real T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "add", add(a, b));
  detail::check_cpu(a, "add");
  detail::check_cpu(b, "add");
  Tensor<T> y = detail::zip(a, b, [](T u, T v) { return u + v; }, "add");
  return record("add", y, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::sum_to(g, sa), detail::sum_to(g, sb)};
  });
}

/// a - b with broadcasting.
template <Real T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "sub", sub(a, b));
  detail::check_cpu(a, "sub");
  detail::check_cpu(b, "sub");
  Tensor<T> y = detail::zip(a, b, [](T u, T v) { return u - v; }, "sub");
  return record("sub", y, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::sum_to(g, sa),
                                  detail::sum_to(detail::map(g, [](T v) { return -v; }), sb)};
  });
}

/// a * b with broadcasting.
template <Real T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "mul", mul(a, b));
  detail::check_cpu(a, "mul");
  detail::check_cpu(b, "mul");
  Tensor<T> y = detail::zip(a, b, [](T u, T v) { return u * v; }, "mul");
  const bool ga = needs_grad(a), gb = needs_grad(b);
  // Each operand is kept only for the other's gradient.
  return record("mul", y, {a, b},
                [a = gb ? a.detach() : Tensor<T>(), b = ga ? b.detach() : Tensor<T>(), sa = a.shape(), sb = b.shape(),
                 ga, gb](const Tensor<T>& g) {
                  auto times = [](T u, T v) { return u * v; };
                  return std::vector<Tensor<T>>{ga ? detail::sum_to(detail::zip(g, b, times, "mul"), sa) : Tensor<T>(),
                                                gb ? detail::sum_to(detail::zip(g, a, times, "mul"), sb) : Tensor<T>()};
                });
}

/// a / b with broadcasting.
template <Real T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "div", div(a, b));
  detail::check_cpu(a, "div");
  detail::check_cpu(b, "div");
  Tensor<T> y = detail::zip(a, b, [](T u, T v) { return u / v; }, "div");
  const bool ga = needs_grad(a), gb = needs_grad(b);
  return record("div", y, {a, b}, [b = b.detach(), y = y.detach(), sa = a.shape(), ga, gb](const Tensor<T>& g) {
    Tensor<T> gy_over_b = detail::zip(g, b, [](T u, T v) { return u / v; }, "div");
    return std::vector<Tensor<T>>{
        ga ? detail::sum_to(gy_over_b, sa) : Tensor<T>(),
        gb ? detail::sum_to(detail::zip(gy_over_b, y, [](T u, T v) { return -u * v; }, "div"), b.shape())
           : Tensor<T>()};
  });
}

/// -x.
template <Real T>
Tensor<T> neg(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "neg", neg(x));
  return detail::unary<detail::GradientReads::Nothing>("neg", x, [](T v) { return -v; }, [](T g) { return -g; });
}

/// x + s, x * s and friends for a scalar s (no tensor is allocated for s).
template <Real T>
Tensor<T> add(const Tensor<T>& x, T s) {
  GKD_CUDA_DISPATCH(x.device(), "add_scalar", add_scalar(x, s));
  return detail::unary<detail::GradientReads::Nothing>("add_scalar", x, [s](T v) { return v + s; }, [](T g) { return g; });
}
template <Real T>
Tensor<T> mul(const Tensor<T>& x, T s) {
  GKD_CUDA_DISPATCH(x.device(), "mul_scalar", mul_scalar(x, s));
  return detail::unary<detail::GradientReads::Nothing>("mul_scalar", x, [s](T v) { return v * s; }, [s](T g) { return g * s; });
}

/// x ^ p for a scalar exponent (PyTorch's pow(Tensor, Scalar)).
template <Real T>
Tensor<T> pow(const Tensor<T>& x, T p) {
  GKD_CUDA_DISPATCH(x.device(), "pow_scalar", pow_scalar(x, p));
  return detail::unary<detail::GradientReads::Input>(
      "pow_scalar", x, [p](T v) { return std::pow(v, p); },
      [p](T g, T v) { return p == T(0) ? T(0) : g * (p * std::pow(v, p - 1)); });
}

/// a ^ b elementwise with broadcasting; the gradient w.r.t. b uses log(a) and needs a > 0.
template <Real T>
Tensor<T> pow(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "pow", pow(a, b));
  detail::check_cpu(a, "pow");
  detail::check_cpu(b, "pow");
  Tensor<T> y = detail::zip(a, b, [](T u, T v) { return std::pow(u, v); }, "pow");
  const bool ga = needs_grad(a), gb = needs_grad(b);
  return record("pow", y, {a, b}, [a = a.detach(), b = b.detach(), y = y.detach(), ga, gb](const Tensor<T>& g) {
    Tensor<T> da, db;
    if (ga)
      da = detail::sum_to(detail::zip3(g, a, b, [](T gi, T u, T v) { return v == T(0) ? T(0) : gi * v * std::pow(u, v - 1); }, "pow"),
                          a.shape());
    if (gb) {
      Tensor<T> gy = detail::zip(g, y, [](T gi, T yi) { return gi * yi; }, "pow");
      db = detail::sum_to(detail::zip(gy, a, [](T u, T av) { return av == T(0) ? T(0) : u * std::log(av); }, "pow"), b.shape());
    }
    return std::vector<Tensor<T>>{da, db};
  });
}

template <Real T>
Tensor<T> exp(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "exp", exp(x));
  return detail::unary<detail::GradientReads::Output>("exp", x, [](T v) { return std::exp(v); }, [](T g, T y) { return g * y; });
}
template <Real T>
Tensor<T> log(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "log", log(x));
  return detail::unary<detail::GradientReads::Input>("log", x, [](T v) { return std::log(v); }, [](T g, T v) { return g * (T(1) / v); });
}
template <Real T>
Tensor<T> sqrt(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "sqrt", sqrt(x));
  return detail::unary<detail::GradientReads::Output>("sqrt", x, [](T v) { return std::sqrt(v); },
                                                     [](T g, T y) { return g * (T(0.5) / y); });
}
/// |x|; the gradient at 0 is 0 (PyTorch's convention).
template <Real T>
Tensor<T> abs(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "abs", abs(x));
  return detail::unary<detail::GradientReads::Input>("abs", x, [](T v) { return std::abs(v); },
                                                    [](T g, T v) { return v > 0 ? g : (v < 0 ? -g : T(0)); });
}
/// min(max(x, lo), hi); the gradient passes where lo <= x <= hi (PyTorch's convention).
template <Real T>
Tensor<T> clamp(const Tensor<T>& x, T lo, T hi) {
  GKD_CHECK(lo <= hi, "clamp", "min " << lo << " is greater than max " << hi);
  GKD_CUDA_DISPATCH(x.device(), "clamp", clamp(x, lo, hi));
  return detail::unary<detail::GradientReads::Input>("clamp", x, [lo, hi](T v) { return std::min(std::max(v, lo), hi); },
                                                    [lo, hi](T g, T v) { return ((v >= lo) & (v <= hi)) ? g : T(0); });
}

/// cond ? a : b elementwise, with broadcasting. `cond` is a 0/1 mask (any nonzero is true); it is
/// not differentiated.
template <Real T>
Tensor<T> where(const Tensor<T>& cond, const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(cond.device(), detail::dispatch_device(a.device(), b.device())), "where",
                    where(cond, a, b));
  detail::check_cpu(cond, "where");
  detail::check_cpu(a, "where");
  detail::check_cpu(b, "where");
  Tensor<T> y = detail::zip3(cond, a, b, [](T c, T u, T v) { return c != T(0) ? u : v; }, "where");
  return record("where", y, {a, b}, [c = cond.detach(), sa = a.shape(), sb = b.shape()](const Tensor<T>& g) {
    const Tensor<T> zero = Tensor<T>::scalar(T(0));
    return std::vector<Tensor<T>>{
        detail::sum_to(detail::zip3(c, g, zero, [](T ci, T gi, T) { return ci != T(0) ? gi : T(0); }, "where"), sa),
        detail::sum_to(detail::zip3(c, g, zero, [](T ci, T gi, T) { return ci != T(0) ? T(0) : gi; }, "where"), sb)};
  });
}

// ---- comparisons (not differentiable; 0/1 masks) ----------------------------------------------------

template <Real T>
Tensor<T> gt(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "gt", gt(a, b));
  detail::check_cpu(a, "gt");
  detail::check_cpu(b, "gt");
  return detail::zip(a, b, [](T u, T v) { return T(u > v); }, "gt");
}
template <Real T>
Tensor<T> lt(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "lt", lt(a, b));
  detail::check_cpu(a, "lt");
  detail::check_cpu(b, "lt");
  return detail::zip(a, b, [](T u, T v) { return T(u < v); }, "lt");
}
template <Real T>
Tensor<T> eq(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "eq", eq(a, b));
  detail::check_cpu(a, "eq");
  detail::check_cpu(b, "eq");
  return detail::zip(a, b, [](T u, T v) { return T(u == v); }, "eq");
}

// ---- activations ------------------------------------------------------------------------------------

/// An activation that an op applies to its own output in the same pass over memory, instead of a
/// separate op reading and writing the whole tensor again (see batch_norm2d).
enum class FusedActivation { None, ReLU, ReLU6 };

namespace detail {

/// One value through activation A.
template <FusedActivation A, Real T>
constexpr T activation_value(T v) {
  if constexpr (A == FusedActivation::ReLU) return v > 0 ? v : T(0);
  if constexpr (A == FusedActivation::ReLU6) return std::min(std::max(v, T(0)), T(6));
  return v;
}
/// Whether the gradient passes activation A at output y (y > 0 iff x > 0, and y < 6 iff x < 6; gradient 0
/// at the kinks, as PyTorch).
template <FusedActivation A, Real T>
constexpr bool activation_passes(T y) {
  if constexpr (A == FusedActivation::ReLU) return y > 0;
  if constexpr (A == FusedActivation::ReLU6) return (y > 0) & (y < 6);
  return true;
}
/// f(std::integral_constant<FusedActivation, a>{}): turns the run-time choice into a compile-time one.
template <class F>
decltype(auto) with_fused_activation(FusedActivation a, F&& f) {
  using enum FusedActivation;
  switch (a) {
    case ReLU: return f(std::integral_constant<FusedActivation, ReLU>{});
    case ReLU6: return f(std::integral_constant<FusedActivation, ReLU6>{});
    case None: break;
  }
  return f(std::integral_constant<FusedActivation, None>{});
}

}  // namespace detail

/// max(x, 0); gradient 0 at 0.
template <Real T>
Tensor<T> relu(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "relu", relu(x));
  constexpr auto A = FusedActivation::ReLU;
  return detail::unary<detail::GradientReads::Output>(
      "relu", x, [](T v) { return detail::activation_value<A>(v); },
      [](T g, T y) { return detail::activation_passes<A>(y) ? g : T(0); });
}
/// min(max(x, 0), 6).
template <Real T>
Tensor<T> relu6(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "relu6", relu6(x));
  constexpr auto A = FusedActivation::ReLU6;
  return detail::unary<detail::GradientReads::Output>(
      "relu6", x, [](T v) { return detail::activation_value<A>(v); },
      [](T g, T y) { return detail::activation_passes<A>(y) ? g : T(0); });
}
/// relu(x), relu6(x) or x itself, as separate ops (what a fused op computes in its own pass).
template <Real T>
Tensor<T> activate(const Tensor<T>& x, FusedActivation a) {
  return a == FusedActivation::ReLU ? relu(x) : a == FusedActivation::ReLU6 ? relu6(x) : x;
}
/// x for x > 0, slope * x otherwise.
template <Real T>
Tensor<T> leaky_relu(const Tensor<T>& x, T slope = T(0.01)) {
  GKD_CUDA_DISPATCH(x.device(), "leaky_relu", leaky_relu(x, slope));
  return detail::unary<detail::GradientReads::Input>("leaky_relu", x, [slope](T v) { return v > 0 ? v : slope * v; },
                                                    [slope](T g, T v) { return v > 0 ? g : slope * g; });
}

/// How GELU is evaluated: the exact erf form or PyTorch's `approximate="tanh"` form.
enum class GeluApproximation { None, Tanh };

/// Gaussian error linear unit.
template <Real T>
Tensor<T> gelu(const Tensor<T>& x, GeluApproximation approx = GeluApproximation::None) {
  GKD_CUDA_DISPATCH(x.device(), "gelu", gelu(x, approx == GeluApproximation::Tanh));
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  constexpr T kSqrt2OverPi = T(0.79788456080286535588);
  constexpr T kCubic = T(0.044715);
  if (approx == GeluApproximation::None)
    return detail::unary<detail::GradientReads::Input>(
        "gelu", x, [=](T v) { return T(0.5) * v * (T(1) + std::erf(v * kInvSqrt2)); },
        [=](T g, T v) {
          return g * (T(0.5) * (T(1) + std::erf(v * kInvSqrt2)) + v * kInvSqrt2Pi * std::exp(T(-0.5) * v * v));
        });
  return detail::unary<detail::GradientReads::Input>(
      "gelu_tanh", x,
      [=](T v) { return T(0.5) * v * (T(1) + std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v))); },
      [=](T g, T v) {
        const T t = std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v));
        return g * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * kSqrt2OverPi * (T(1) + T(3) * kCubic * v * v));
      });
}

template <Real T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "sigmoid", sigmoid(x));
  return detail::unary<detail::GradientReads::Output>(
      "sigmoid", x, [](T v) { return v >= 0 ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v)); },
      [](T g, T y) { return g * (y * (T(1) - y)); });
}
template <Real T>
Tensor<T> tanh(const Tensor<T>& x) {
  GKD_CUDA_DISPATCH(x.device(), "tanh", tanh(x));
  return detail::unary<detail::GradientReads::Output>("tanh", x, [](T v) { return std::tanh(v); },
                                                     [](T g, T y) { return g * (T(1) - y * y); });
}
/// log(1 + exp(beta x)) / beta, linear above `threshold` (PyTorch's Softplus).
template <Real T>
Tensor<T> softplus(const Tensor<T>& x, T beta = T(1), T threshold = T(20)) {
  GKD_CHECK(beta > 0, "softplus", "beta must be positive, got " << beta);
  GKD_CUDA_DISPATCH(x.device(), "softplus", softplus(x, beta, threshold));
  return detail::unary<detail::GradientReads::Input>(
      "softplus", x, [=](T v) { return v * beta > threshold ? v : std::log1p(std::exp(v * beta)) / beta; },
      [=](T g, T v) {
        if (v * beta > threshold) return g;
        const T z = std::exp(v * beta);
        return g * (z / (z + T(1)));
      });
}

// ---- operators --------------------------------------------------------------------------------------

template <Real T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <Real T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <Real T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <Real T> Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }
template <Real T> Tensor<T> operator-(const Tensor<T>& x) { return neg(x); }
template <Real T> Tensor<T> operator+(const Tensor<T>& x, T s) { return add(x, s); }
template <Real T> Tensor<T> operator+(T s, const Tensor<T>& x) { return add(x, s); }
template <Real T> Tensor<T> operator-(const Tensor<T>& x, T s) { return add(x, -s); }
template <Real T> Tensor<T> operator-(T s, const Tensor<T>& x) { return add(neg(x), s); }
template <Real T> Tensor<T> operator*(const Tensor<T>& x, T s) { return mul(x, s); }
template <Real T> Tensor<T> operator*(T s, const Tensor<T>& x) { return mul(x, s); }
template <Real T> Tensor<T> operator/(const Tensor<T>& x, T s) { return mul(x, T(1) / s); }

}  // namespace gkd

GKD_REGISTER_OPS(elementwise, "add", "sub", "mul", "div", "neg", "add_scalar", "mul_scalar", "pow_scalar", "pow",
                 "exp", "log", "sqrt", "abs", "clamp", "where", "relu", "relu6", "leaky_relu", "gelu", "gelu_tanh",
                 "sigmoid", "tanh", "softplus")
