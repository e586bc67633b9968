// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: raw launchers of the elementwise kernels (contiguous device pointers, or a
/// broadcast layout for binary ops). The tensor-level ops in elementwise.cpp call them.
#include <cstdint>

#include "gkd/cuda/memory.hpp"

namespace gkd::cuda {

/// Unary maps; `p` and `q` are the op's scalars (the addend, factor, exponent or slope; clamp's
/// (lo, hi); softplus's (beta, threshold)).
enum class UnaryOp {
  Neg, AddScalar, MulScalar, PowScalar, Relu, Relu6, LeakyRelu, Sigmoid, Tanh, Gelu, GeluTanh, Exp, Log, Sqrt,
  Abs, Clamp, Softplus
};
/// Binary maps. NegMul is -(a * b) (the divisor's gradient); Gt, Lt, Eq give 0/1; PowBaseGrad is
/// b * a^(b-1) (0 where b == 0) and MulLog is a * log(b) (0 where b == 0), the two gradients of pow;
/// KeepIf and DropIf are (a != 0 ? b : 0) and (a != 0 ? 0 : b), the two gradients of where.
enum class BinaryOp { Add, Sub, Mul, Div, NegMul, Pow, Gt, Lt, Eq, PowBaseGrad, MulLog, KeepIf, DropIf };

/// What op's gradient reads besides the output gradient (unary_gradient in elementwise_kernels.cu):
/// the input, the output, or neither. Backward keeps only that tensor.
enum class GradientReads { Input, Output, Nothing };
constexpr GradientReads gradient_reads(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: case UnaryOp::AddScalar: case UnaryOp::MulScalar: return GradientReads::Nothing;
    case UnaryOp::Relu: case UnaryOp::Relu6: case UnaryOp::Sigmoid: case UnaryOp::Tanh: case UnaryOp::Exp:
    case UnaryOp::Sqrt: return GradientReads::Output;
    default: return GradientReads::Input;
  }
}

/// y[i] = op(x[i]).
template <class T>
void launch_unary(UnaryOp op, const T* x, T* y, std::int64_t n, T p, T q = T(0));
/// gx[i] = the input gradient of op for g[i] at x[i], y[i] (g times the derivative; 0 on a flat piece
/// of a piecewise op); only the operand gradient_reads(op) names is read (pass any readable n-element
/// buffer for the other).
template <class T>
void launch_unary_backward(UnaryOp op, const T* g, const T* x, const T* y, T* gx, std::int64_t n, T p, T q = T(0));
/// out[i] = op(a[i], b[i]); `layout` (dst strides unused) gives a's strides as `dst_stride` and b's as
/// `src_stride` over the output shape, or is nullptr when a and b are contiguous of the output's shape.
template <class T>
void launch_binary(BinaryOp op, const T* a, const T* b, T* out, std::int64_t n, const StridedPair* layout);

/// Shape and the strides of three operands broadcast to it (in elements), for `launch_where`.
struct Strided3 {
  int rank = 0;
  std::int64_t shape[kMaxRank] = {};
  std::int64_t stride[3][kMaxRank] = {};
};
/// out[i] = cond[i] != 0 ? a[i] : b[i] over `layout.shape` (n elements), out contiguous.
template <class T>
void launch_where(const T* cond, const T* a, const T* b, T* out, std::int64_t n, const Strided3& layout);

}  // namespace gkd::cuda
