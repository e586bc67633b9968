// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Private to kernels/: raw launchers of the elementwise kernels (contiguous device pointers, or a
/// broadcast layout for binary ops). The tensor-level ops in elementwise.cpp call them.
#include <cstdint>

#include "gkd/cuda/memory.hpp"

namespace gkd::cuda {

/// Unary maps; `p` is the op's scalar (the addend, factor, exponent or slope).
enum class UnaryOp { Neg, AddScalar, MulScalar, PowScalar, Relu, Relu6, LeakyRelu, Sigmoid, Tanh, Gelu, GeluTanh, Exp, Log, Sqrt };
/// Binary maps; NegMul is -(a * b) (the divisor's gradient).
enum class BinaryOp { Add, Sub, Mul, Div, NegMul };

/// y[i] = op(x[i]).
template <class T>
void launch_unary(UnaryOp op, const T* x, T* y, std::int64_t n, T p);
/// gx[i] = g[i] * op'(x[i], y[i]).
template <class T>
void launch_unary_backward(UnaryOp op, const T* g, const T* x, const T* y, T* gx, std::int64_t n, T p);
/// out[i] = op(a[i], b[i]); `layout` (dst strides unused) gives a's strides as `dst_stride` and b's as
/// `src_stride` over the output shape, or is nullptr when a and b are contiguous of the output's shape.
template <class T>
void launch_binary(BinaryOp op, const T* a, const T* b, T* out, std::int64_t n, const StridedPair* layout);

}  // namespace gkd::cuda
