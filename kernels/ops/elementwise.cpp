// SPDX-License-Identifier: Apache-2.0
// Tensor-level CUDA elementwise ops, comparisons and where with autograd; the kernels are in
// elementwise_kernels.cu.
#include "gkd/cuda/elementwise.hpp"

#include <string_view>

#include "ops/elementwise_kernels.hpp"

namespace gkd::cuda {
namespace {

template <Real T>
void check_device(const Tensor<T>& t, std::string_view op) {
  GKD_CHECK(t.defined(), op, "input is an undefined tensor");
  GKD_CHECK(t.device().is_cuda(), op, "expected a CUDA tensor, got one on " << t.device().str());
}

template <Real T>
Tensor<T> unary_op(std::string_view name, UnaryOp op, const Tensor<T>& x, T p, T q = T(0)) {
  check_device(x, name);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.device());
  launch_unary(op, xc.data(), y.data(), x.numel(), p, q);
  const GradientReads of = gradient_reads(op);
  Tensor<T> kept = of == GradientReads::Input ? xc : of == GradientReads::Output ? y.detach() : Tensor<T>();
  return record(name, y, {x}, [kept = std::move(kept), op, p, q](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> gx = Tensor<T>::empty(gc.shape(), gc.device());
    const T* v = kept.defined() ? kept.data() : gc.data();  // the operand the derivative reads
    launch_unary_backward(op, gc.data(), v, v, gx.data(), gc.numel(), p, q);
    return std::vector<Tensor<T>>{gx};
  });
}

/// op(a, b) with broadcasting, forward only.
template <Real T>
Tensor<T> binary_values(BinaryOp op, const Tensor<T>& a, const Tensor<T>& b, std::string_view name) {
  check_device(a, name);
  check_device(b, name);
  GKD_CHECK(a.device() == b.device(), name, "operands on " << a.device().str() << " and " << b.device().str());
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor<T> out = Tensor<T>::empty(shape, a.device());
  if (a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()) {
    launch_binary(op, a.data(), b.data(), out.data(), out.numel(), static_cast<const StridedPair*>(nullptr));
    return out;
  }
  const StridedPair layout = detail::strided_pair(shape, detail::broadcast_strides(a.shape(), a.strides(), shape),
                                                  detail::broadcast_strides(b.shape(), b.strides(), shape));
  launch_binary(op, a.data(), b.data(), out.data(), out.numel(), &layout);
  return out;
}

}  // namespace

template <Real T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = binary_values(BinaryOp::Add, a, b, "add");
  return record("add", y, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::sum_to(g, sa), detail::sum_to(g, sb)};
  });
}

template <Real T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = binary_values(BinaryOp::Sub, a, b, "sub");
  return record("sub", y, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> ng = Tensor<T>::empty(gc.shape(), gc.device());
    launch_unary(UnaryOp::Neg, gc.data(), ng.data(), gc.numel(), T(0));
    return std::vector<Tensor<T>>{detail::sum_to(g, sa), detail::sum_to(ng, sb)};
  });
}

template <Real T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = binary_values(BinaryOp::Mul, a, b, "mul");
  const bool ga = needs_grad(a), gb = needs_grad(b);
  // Each operand is kept only for the other's gradient.
  return record("mul", y, {a, b},
                [a = gb ? a.detach() : Tensor<T>(), b = ga ? b.detach() : Tensor<T>(), sa = a.shape(), sb = b.shape(),
                 ga, gb](const Tensor<T>& g) {
                  return std::vector<Tensor<T>>{
                      ga ? detail::sum_to(binary_values(BinaryOp::Mul, g, b, "mul"), sa) : Tensor<T>(),
                      gb ? detail::sum_to(binary_values(BinaryOp::Mul, g, a, "mul"), sb) : Tensor<T>()};
                });
}

template <Real T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = binary_values(BinaryOp::Div, a, b, "div");
  const bool ga = needs_grad(a), gb = needs_grad(b);
  return record("div", y, {a, b}, [b = b.detach(), y = y.detach(), sa = a.shape(), ga, gb](const Tensor<T>& g) {
    const Tensor<T> g_over_b = binary_values(BinaryOp::Div, g, b, "div");
    return std::vector<Tensor<T>>{
        ga ? detail::sum_to(g_over_b, sa) : Tensor<T>(),
        gb ? detail::sum_to(binary_values(BinaryOp::NegMul, g_over_b, y, "div"), b.shape()) : Tensor<T>()};
  });
}

template <Real T>
Tensor<T> pow(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = binary_values(BinaryOp::Pow, a, b, "pow");
  const bool ga = needs_grad(a), gb = needs_grad(b);
  return record("pow", y, {a, b}, [a = a.detach(), b = b.detach(), y = y.detach(), ga, gb](const Tensor<T>& g) {
    Tensor<T> da, db;
    if (ga) {
      const Tensor<T> local = binary_values(BinaryOp::PowBaseGrad, a, b, "pow");  // b * a^(b-1)
      da = detail::sum_to(binary_values(BinaryOp::Mul, g, local, "pow"), a.shape());
    }
    if (gb) {
      const Tensor<T> gy = binary_values(BinaryOp::Mul, g, y, "pow");
      db = detail::sum_to(binary_values(BinaryOp::MulLog, gy, a, "pow"), b.shape());  // g * y * log(a)
    }
    return std::vector<Tensor<T>>{da, db};
  });
}

template <Real T>
Tensor<T> where(const Tensor<T>& cond, const Tensor<T>& a, const Tensor<T>& b) {
  constexpr std::string_view name = "where";
  check_device(cond, name);
  check_device(a, name);
  check_device(b, name);
  GKD_CHECK(cond.device() == a.device() && a.device() == b.device(), name,
            "condition on " << cond.device().str() << ", operands on " << a.device().str() << " and "
                            << b.device().str());
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), name), b.shape(), name);
  GKD_CHECK(shape.size() <= static_cast<std::size_t>(kMaxRank), name,
            "tensors of rank " << shape.size() << " exceed the CUDA limit of " << kMaxRank);
  Strided3 layout;
  layout.rank = static_cast<int>(shape.size());
  const Tensor<T>* operands[3] = {&cond, &a, &b};
  for (int k = 0; k < 3; ++k) {
    const Strides s = detail::broadcast_strides(operands[k]->shape(), operands[k]->strides(), shape);
    for (std::size_t d = 0; d < shape.size(); ++d) layout.stride[k][d] = s[d];
  }
  for (std::size_t d = 0; d < shape.size(); ++d) layout.shape[d] = shape[d];
  Tensor<T> y = Tensor<T>::empty(shape, a.device());
  launch_where(cond.data(), a.data(), b.data(), y.data(), y.numel(), layout);
  return record("where", y, {a, b}, [c = cond.detach(), sa = a.shape(), sb = b.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::sum_to(binary_values(BinaryOp::KeepIf, c, g, "where"), sa),
                                  detail::sum_to(binary_values(BinaryOp::DropIf, c, g, "where"), sb)};
  });
}

template <Real T>
Tensor<T> gt(const Tensor<T>& a, const Tensor<T>& b) {
  return binary_values(BinaryOp::Gt, a, b, "gt");
}
template <Real T>
Tensor<T> lt(const Tensor<T>& a, const Tensor<T>& b) {
  return binary_values(BinaryOp::Lt, a, b, "lt");
}
template <Real T>
Tensor<T> eq(const Tensor<T>& a, const Tensor<T>& b) {
  return binary_values(BinaryOp::Eq, a, b, "eq");
}

template <Real T> Tensor<T> abs(const Tensor<T>& x) { return unary_op("abs", UnaryOp::Abs, x, T(0)); }
template <Real T>
Tensor<T> clamp(const Tensor<T>& x, T lo, T hi) {
  GKD_CHECK(lo <= hi, "clamp", "min " << lo << " is greater than max " << hi);
  return unary_op("clamp", UnaryOp::Clamp, x, lo, hi);
}
template <Real T>
Tensor<T> softplus(const Tensor<T>& x, T beta, T threshold) {
  GKD_CHECK(beta > 0, "softplus", "beta must be positive, got " << beta);
  return unary_op("softplus", UnaryOp::Softplus, x, beta, threshold);
}

template <Real T> Tensor<T> neg(const Tensor<T>& x) { return unary_op("neg", UnaryOp::Neg, x, T(0)); }
template <Real T> Tensor<T> add_scalar(const Tensor<T>& x, T s) { return unary_op("add_scalar", UnaryOp::AddScalar, x, s); }
template <Real T> Tensor<T> mul_scalar(const Tensor<T>& x, T s) { return unary_op("mul_scalar", UnaryOp::MulScalar, x, s); }
template <Real T> Tensor<T> pow_scalar(const Tensor<T>& x, T p) { return unary_op("pow_scalar", UnaryOp::PowScalar, x, p); }
template <Real T> Tensor<T> relu(const Tensor<T>& x) { return unary_op("relu", UnaryOp::Relu, x, T(0)); }
template <Real T> Tensor<T> relu6(const Tensor<T>& x) { return unary_op("relu6", UnaryOp::Relu6, x, T(0)); }
template <Real T> Tensor<T> leaky_relu(const Tensor<T>& x, T slope) { return unary_op("leaky_relu", UnaryOp::LeakyRelu, x, slope); }
template <Real T> Tensor<T> sigmoid(const Tensor<T>& x) { return unary_op("sigmoid", UnaryOp::Sigmoid, x, T(0)); }
template <Real T> Tensor<T> tanh(const Tensor<T>& x) { return unary_op("tanh", UnaryOp::Tanh, x, T(0)); }
template <Real T> Tensor<T> gelu(const Tensor<T>& x, bool tanh_approximation) {
  return tanh_approximation ? unary_op("gelu_tanh", UnaryOp::GeluTanh, x, T(0)) : unary_op("gelu", UnaryOp::Gelu, x, T(0));
}
template <Real T> Tensor<T> exp(const Tensor<T>& x) { return unary_op("exp", UnaryOp::Exp, x, T(0)); }
template <Real T> Tensor<T> log(const Tensor<T>& x) { return unary_op("log", UnaryOp::Log, x, T(0)); }
template <Real T> Tensor<T> sqrt(const Tensor<T>& x) { return unary_op("sqrt", UnaryOp::Sqrt, x, T(0)); }

#define GKD_INSTANTIATE_ELEMENTWISE(T)                                       \
  template Tensor<T> add<T>(const Tensor<T>&, const Tensor<T>&);            \
  template Tensor<T> sub<T>(const Tensor<T>&, const Tensor<T>&);            \
  template Tensor<T> mul<T>(const Tensor<T>&, const Tensor<T>&);            \
  template Tensor<T> div<T>(const Tensor<T>&, const Tensor<T>&);            \
  template Tensor<T> neg<T>(const Tensor<T>&);                              \
  template Tensor<T> add_scalar<T>(const Tensor<T>&, T);                    \
  template Tensor<T> mul_scalar<T>(const Tensor<T>&, T);                    \
  template Tensor<T> pow_scalar<T>(const Tensor<T>&, T);                    \
  template Tensor<T> relu<T>(const Tensor<T>&);                             \
  template Tensor<T> relu6<T>(const Tensor<T>&);                            \
  template Tensor<T> leaky_relu<T>(const Tensor<T>&, T);                    \
  template Tensor<T> sigmoid<T>(const Tensor<T>&);                          \
  template Tensor<T> tanh<T>(const Tensor<T>&);                             \
  template Tensor<T> gelu<T>(const Tensor<T>&, bool);                       \
  template Tensor<T> exp<T>(const Tensor<T>&);                              \
  template Tensor<T> log<T>(const Tensor<T>&);                              \
  template Tensor<T> sqrt<T>(const Tensor<T>&);                             \
  template Tensor<T> pow<T>(const Tensor<T>&, const Tensor<T>&);            \
  template Tensor<T> where<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&); \
  template Tensor<T> gt<T>(const Tensor<T>&, const Tensor<T>&);             \
  template Tensor<T> lt<T>(const Tensor<T>&, const Tensor<T>&);             \
  template Tensor<T> eq<T>(const Tensor<T>&, const Tensor<T>&);             \
  template Tensor<T> abs<T>(const Tensor<T>&);                              \
  template Tensor<T> clamp<T>(const Tensor<T>&, T, T);                      \
  template Tensor<T> softplus<T>(const Tensor<T>&, T, T);
GKD_INSTANTIATE_ELEMENTWISE(float)
GKD_INSTANTIATE_ELEMENTWISE(double)
#undef GKD_INSTANTIATE_ELEMENTWISE

}  // namespace gkd::cuda
