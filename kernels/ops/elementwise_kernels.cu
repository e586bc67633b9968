// SPDX-License-Identifier: Apache-2.0
// Vectorised grid-stride elementwise kernels: 16-byte packs on aligned contiguous data, a scalar
// tail, and an index-computing kernel for broadcast binary ops.
#include <cstdint>

#include "check.hpp"
#include "launch.hpp"
#include "ops/elementwise_kernels.hpp"

namespace gkd::cuda {
namespace {

template <class T>
struct alignas(16) Pack {
  static constexpr int kWidth = 16 / sizeof(T);
  T v[kWidth];
};

template <class T>
bool aligned16(const T* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

template <class T>
__device__ T unary_value(UnaryOp op, T v, T p, T q) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  constexpr T kSqrt2OverPi = T(0.79788456080286535588);
  constexpr T kCubic = T(0.044715);
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::AddScalar: return v + p;
    case UnaryOp::MulScalar: return v * p;
    case UnaryOp::PowScalar: return pow(v, p);
    case UnaryOp::Relu: return v > T(0) ? v : T(0);
    case UnaryOp::Relu6: {  // std::min(std::max(v, 0), 6): NaN stays NaN, as on the CPU
      const T m = v < T(0) ? T(0) : v;
      return T(6) < m ? T(6) : m;
    }
    case UnaryOp::LeakyRelu: return v > T(0) ? v : p * v;
    case UnaryOp::Sigmoid: return T(1) / (T(1) + exp(-v));
    case UnaryOp::Tanh: return tanh(v);
    case UnaryOp::Gelu: return T(0.5) * v * (T(1) + erf(v * kInvSqrt2));
    case UnaryOp::GeluTanh: return T(0.5) * v * (T(1) + tanh(kSqrt2OverPi * (v + kCubic * v * v * v)));
    case UnaryOp::Exp: return exp(v);
    case UnaryOp::Log: return log(v);
    case UnaryOp::Sqrt: return sqrt(v);
    case UnaryOp::Abs: return fabs(v);
    case UnaryOp::Clamp: {  // std::min(std::max(v, lo), hi), NaN included
      const T m = v < p ? p : v;
      return q < m ? q : m;
    }
    case UnaryOp::Softplus: return v * p > q ? v : log1p(exp(v * p)) / p;
  }
  return v;
}

/// The input gradient of op at input v, output y, for output gradient g, written as the CPU ops write
/// it (gkd/ops/elementwise.hpp): piecewise ops select g on their sloped pieces and 0 on flat ones, so
/// that a non-finite g does not leak through a flat piece; smooth ones multiply g by the derivative.
template <class T>
__device__ T unary_gradient(UnaryOp op, T g, T v, T y, T p, T q) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  constexpr T kSqrt2OverPi = T(0.79788456080286535588);
  constexpr T kCubic = T(0.044715);
  switch (op) {
    case UnaryOp::Neg: return -g;
    case UnaryOp::AddScalar: return g;
    case UnaryOp::MulScalar: return g * p;
    case UnaryOp::PowScalar: return p == T(0) ? T(0) : g * (p * pow(v, p - T(1)));
    case UnaryOp::Relu: return y > T(0) ? g : T(0);                  // y > 0 iff v > 0
    case UnaryOp::Relu6: return y > T(0) && y < T(6) ? g : T(0);    // 0 < y < 6 iff 0 < v < 6
    case UnaryOp::LeakyRelu: return v > T(0) ? g : p * g;
    case UnaryOp::Sigmoid: return g * (y * (T(1) - y));
    case UnaryOp::Tanh: return g * (T(1) - y * y);
    case UnaryOp::Gelu: return g * (T(0.5) * (T(1) + erf(v * kInvSqrt2)) + v * kInvSqrt2Pi * exp(T(-0.5) * v * v));
    case UnaryOp::GeluTanh: {
      const T t = tanh(kSqrt2OverPi * (v + kCubic * v * v * v));
      return g * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * kSqrt2OverPi * (T(1) + T(3) * kCubic * v * v));
    }
    case UnaryOp::Exp: return g * y;
    case UnaryOp::Log: return g * (T(1) / v);
    case UnaryOp::Sqrt: return g * (T(0.5) / y);
    case UnaryOp::Abs: return v > T(0) ? g : (v < T(0) ? -g : T(0));
    case UnaryOp::Clamp: return v >= p && v <= q ? g : T(0);
    case UnaryOp::Softplus: {
      if (v * p > q) return g;
      const T z = exp(v * p);
      return g * (z / (z + T(1)));
    }
  }
  return T(0);
}

template <class T>
__device__ T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::NegMul: return -(a * b);
    case BinaryOp::Pow: return pow(a, b);
    case BinaryOp::Gt: return a > b ? T(1) : T(0);
    case BinaryOp::Lt: return a < b ? T(1) : T(0);
    case BinaryOp::Eq: return a == b ? T(1) : T(0);
    case BinaryOp::PowBaseGrad: return b == T(0) ? T(0) : b * pow(a, b - T(1));
    case BinaryOp::MulLog: return b == T(0) ? T(0) : a * log(b);
    case BinaryOp::KeepIf: return a != T(0) ? b : T(0);
    case BinaryOp::DropIf: return a != T(0) ? T(0) : b;
  }
  return a;
}

__device__ inline std::int64_t global_thread() {
  return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
}
__device__ inline std::int64_t grid_threads() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

// Packs: `packs` 16-byte packs from aligned pointers; the caller handles the tail.
template <class T>
__global__ void unary_packed(UnaryOp op, const Pack<T>* x, Pack<T>* y, std::int64_t packs, T p, T q) {
  for (std::int64_t i = global_thread(); i < packs; i += grid_threads()) {
    Pack<T> in = x[i], out;
#pragma unroll
    for (int k = 0; k < Pack<T>::kWidth; ++k) out.v[k] = unary_value(op, in.v[k], p, q);
    y[i] = out;
  }
}

template <class T>
__global__ void unary_scalar(UnaryOp op, const T* x, T* y, std::int64_t n, T p, T q) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) y[i] = unary_value(op, x[i], p, q);
}

template <class T>
__global__ void unary_backward_kernel(UnaryOp op, const T* g, const T* x, const T* y, T* gx, std::int64_t n, T p,
                                      T q) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads())
    gx[i] = unary_gradient(op, g[i], x[i], y[i], p, q);
}

template <class T>
__global__ void binary_packed(BinaryOp op, const Pack<T>* a, const Pack<T>* b, Pack<T>* out, std::int64_t packs) {
  for (std::int64_t i = global_thread(); i < packs; i += grid_threads()) {
    Pack<T> u = a[i], v = b[i], r;
#pragma unroll
    for (int k = 0; k < Pack<T>::kWidth; ++k) r.v[k] = binary_value(op, u.v[k], v.v[k]);
    out[i] = r;
  }
}

template <class T>
__global__ void binary_scalar(BinaryOp op, const T* a, const T* b, T* out, std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = binary_value(op, a[i], b[i]);
}

template <class T>
__global__ void binary_broadcast(BinaryOp op, const T* a, const T* b, T* out, std::int64_t n, StridedPair layout) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    std::int64_t rest = i, oa = 0, ob = 0;
    for (int d = layout.rank - 1; d >= 0; --d) {
      const std::int64_t idx = rest % layout.shape[d];
      rest /= layout.shape[d];
      oa += idx * layout.dst_stride[d];
      ob += idx * layout.src_stride[d];
    }
    out[i] = binary_value(op, a[oa], b[ob]);
  }
}

template <class T>
__global__ void where_kernel(const T* cond, const T* a, const T* b, T* out, std::int64_t n, Strided3 layout) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) {
    std::int64_t rest = i, oc = 0, oa = 0, ob = 0;
    for (int d = layout.rank - 1; d >= 0; --d) {
      const std::int64_t idx = rest % layout.shape[d];
      rest /= layout.shape[d];
      oc += idx * layout.stride[0][d];
      oa += idx * layout.stride[1][d];
      ob += idx * layout.stride[2][d];
    }
    out[i] = cond[oc] != T(0) ? a[oa] : b[ob];
  }
}

}  // namespace

template <class T>
void launch_unary(UnaryOp op, const T* x, T* y, std::int64_t n, T p, T q) {
  if (n <= 0) return;
  std::int64_t done = 0;
  if (aligned16(x) && aligned16(y)) {
    const std::int64_t packs = n / Pack<T>::kWidth;
    if (packs > 0) {
      unary_packed<<<grid_for(packs), kBlock>>>(op, reinterpret_cast<const Pack<T>*>(x), reinterpret_cast<Pack<T>*>(y),
                                                packs, p, q);
      GKD_CUDA_CHECK_LAUNCH("unary_packed");
    }
    done = packs * Pack<T>::kWidth;
  }
  if (done < n) {
    unary_scalar<<<grid_for(n - done), kBlock>>>(op, x + done, y + done, n - done, p, q);
    GKD_CUDA_CHECK_LAUNCH("unary_scalar");
  }
}

template <class T>
void launch_unary_backward(UnaryOp op, const T* g, const T* x, const T* y, T* gx, std::int64_t n, T p, T q) {
  if (n <= 0) return;
  unary_backward_kernel<<<grid_for(n), kBlock>>>(op, g, x, y, gx, n, p, q);
  GKD_CUDA_CHECK_LAUNCH("unary_backward");
}

template <class T>
void launch_binary(BinaryOp op, const T* a, const T* b, T* out, std::int64_t n, const StridedPair* layout) {
  if (n <= 0) return;
  if (layout != nullptr) {
    binary_broadcast<<<grid_for(n), kBlock>>>(op, a, b, out, n, *layout);
    GKD_CUDA_CHECK_LAUNCH("binary_broadcast");
    return;
  }
  std::int64_t done = 0;
  if (aligned16(a) && aligned16(b) && aligned16(out)) {
    const std::int64_t packs = n / Pack<T>::kWidth;
    if (packs > 0) {
      binary_packed<<<grid_for(packs), kBlock>>>(op, reinterpret_cast<const Pack<T>*>(a),
                                                 reinterpret_cast<const Pack<T>*>(b), reinterpret_cast<Pack<T>*>(out),
                                                 packs);
      GKD_CUDA_CHECK_LAUNCH("binary_packed");
    }
    done = packs * Pack<T>::kWidth;
  }
  if (done < n) {
    binary_scalar<<<grid_for(n - done), kBlock>>>(op, a + done, b + done, out + done, n - done);
    GKD_CUDA_CHECK_LAUNCH("binary_scalar");
  }
}

template <class T>
void launch_where(const T* cond, const T* a, const T* b, T* out, std::int64_t n, const Strided3& layout) {
  if (n <= 0) return;
  where_kernel<<<grid_for(n), kBlock>>>(cond, a, b, out, n, layout);
  GKD_CUDA_CHECK_LAUNCH("where_kernel");
}

template void launch_unary<float>(UnaryOp, const float*, float*, std::int64_t, float, float);
template void launch_unary<double>(UnaryOp, const double*, double*, std::int64_t, double, double);
template void launch_unary_backward<float>(UnaryOp, const float*, const float*, const float*, float*, std::int64_t, float,
                                           float);
template void launch_unary_backward<double>(UnaryOp, const double*, const double*, const double*, double*, std::int64_t,
                                            double, double);
template void launch_where<float>(const float*, const float*, const float*, float*, std::int64_t, const Strided3&);
template void launch_where<double>(const double*, const double*, const double*, double*, std::int64_t,
                                   const Strided3&);
template void launch_binary<float>(BinaryOp, const float*, const float*, float*, std::int64_t, const StridedPair*);
template void launch_binary<double>(BinaryOp, const double*, const double*, double*, std::int64_t, const StridedPair*);

}  // namespace gkd::cuda
