// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::Reduction`, shared by every loss, and the plumbing the loss kernels share: validation of
/// class-index targets, the blocked (outer, classes, inner) traversal of [N, C, ...] maps, and a
/// fused elementwise-loss helper.
///
/// Losses take their targets as tensors of T: class indices hold integer values (validated), and
/// targets are constants — no gradient flows into them unless a loss says otherwise.
#include <cmath>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gkd/ops/index.hpp"
#include "gkd/ops/reduce.hpp"

namespace gkd {

/// How a loss turns its per-element values into the result (PyTorch's `reduction=`).
enum class Reduction {
  None,  ///< no reduction: one value per element / position
  Mean,  ///< the mean (each loss documents its exact divisor)
  Sum,   ///< the sum
};

/// "none", "mean" or "sum", as PyTorch spells them.
inline std::string_view reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
  }
  return "?";
}

namespace detail {

/// A contiguous map seen as [outer, classes, inner] (classes at stride `inner`), processed in blocks
/// of up to kBlock consecutive positions of one outer index: per block, the class loop runs over
/// rows of kBlock contiguous values, which keeps [N, C, H, W] maps streaming through cache once.
struct ClassLayout {
  static constexpr std::int64_t kBlock = 64;
  /// The type the class-dim kernels compute in, whatever T is: logsumexp, exp and their differences
  /// lose ~1e-5 relative in float once scaled (e.g. by a temperature), and the scalar exp calls
  /// that dominate cost about the same in double.
  using Acc = double;
  std::int64_t outer = 1, classes = 1, inner = 1;

  ClassLayout(const Shape& shape, std::size_t class_dim) {
    for (std::size_t k = 0; k < shape.size(); ++k) (k < class_dim ? outer : k == class_dim ? classes : inner) *= shape[k];
  }
  [[nodiscard]] std::int64_t positions() const { return outer * inner; }
  [[nodiscard]] std::int64_t blocks_per_outer() const { return (inner + kBlock - 1) / kBlock; }
  [[nodiscard]] std::int64_t blocks() const { return outer * blocks_per_outer(); }

  /// Calls f(block, o, i0, i1) for every block (in parallel); positions i0..i1 of outer index o are
  /// the flat positions o * inner + i0 .. o * inner + i1.
  template <class F>
  void for_each_block(F&& f) const {
    const std::int64_t bpo = blocks_per_outer(), nb = outer * bpo;
#pragma omp parallel for schedule(static) if (outer * classes * inner > kParallelGrain && nb > 1)
    for (std::int64_t b = 0; b < nb; ++b) {
      const std::int64_t o = b / bpo, i0 = (b % bpo) * kBlock;
      f(b, o, i0, std::min(i0 + kBlock, inner));
    }
  }
};

/// log-sum-exp over the C classes (stride S apart) of the n <= kBlock positions starting at xb,
/// accumulated in double: out[j] = log Σ_c exp(xb[c * S + j]).
template <Real T>
void block_log_sum_exp(const T* xb, std::int64_t n, std::int64_t C, std::int64_t S, ClassLayout::Acc* out) {
  using Acc = ClassLayout::Acc;
  Acc mx[ClassLayout::kBlock], se[ClassLayout::kBlock];
  for (std::int64_t j = 0; j < n; ++j) mx[j] = xb[j], se[j] = 0;
  for (std::int64_t c = 1; c < C; ++c)
    for (std::int64_t j = 0; j < n; ++j) mx[j] = std::max(mx[j], Acc(xb[c * S + j]));
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t j = 0; j < n; ++j) se[j] += std::exp(xb[c * S + j] - mx[j]);
  for (std::int64_t j = 0; j < n; ++j) out[j] = mx[j] + std::log(se[j]);
}

/// Sums per-block partial values in block order (deterministic for any thread count).
inline double sum_partials(const std::vector<double>& partial, std::size_t stride, std::size_t field) {
  double s = 0;
  for (std::size_t b = field; b < partial.size(); b += stride) s += partial[b];
  return s;
}

/// Checks an [N, C, ...] input against class-index targets [N, ...] and optional class weights [C],
/// and that every target is an integer in [0, C) or equal to `ignore_index`.
/// `on_host = false` (a loss composed of device ops) reads the targets through a host copy instead of
/// requiring host tensors.
template <Real T>
void check_class_targets(std::string_view op, const Tensor<T>& input, const Tensor<T>& target, const Tensor<T>& weight,
                         std::int64_t ignore_index, bool on_host = true) {
  if (on_host) check_cpu(input, op), check_cpu(target, op);
  GKD_CHECK(input.dim() >= 2, op, "expects input [N, C, ...], got shape " << to_string(input.shape()));
  Shape expected = input.shape();
  expected.erase(expected.begin() + 1);
  GKD_CHECK(target.shape() == expected, op,
            "target of shape " << to_string(target.shape()) << " does not match input of shape "
                               << to_string(input.shape()) << " (expected class indices of shape " << to_string(expected)
                               << ")");
  const std::int64_t classes = input.shape()[1];
  GKD_CHECK(classes > 0, op, "input of shape " << to_string(input.shape()) << " has no classes");
  if (weight.defined()) {
    if (on_host) check_cpu(weight, op);
    GKD_CHECK(weight.shape() == Shape{classes}, op,
              "class weights of shape " << to_string(weight.shape()) << " do not match input of shape "
                                        << to_string(input.shape()) << " (expected [" << classes << "])");
  }
  const Tensor<T> tc = target.cpu().contiguous_copy_if_needed();
  const T* t = tc.data();
  for (std::int64_t i = 0; i < tc.numel(); ++i) {
    const T v = t[i];
    const bool integer = std::isfinite(v) && v == std::trunc(v) && std::abs(v) < T(9.0e15);
    GKD_CHECK(integer && ((v >= 0 && v < T(classes)) || static_cast<std::int64_t>(v) == ignore_index), op,
              "target of shape " << to_string(target.shape()) << " holds " << v << " at flat index " << i
                                 << ", which is not a class index in [0, " << classes << ") for input of shape "
                                 << to_string(input.shape()) << " (ignore_index " << ignore_index << ")");
  }
}

/// A fused elementwise loss l_i = f(i, x_i, y_i) over equally shaped contiguous inputs with a
/// reduction (Mean divides by `mean_divisor`). Backward: dx_i = s_i dfdx(i, x_i, y_i), and
/// dy_i = s_i dfdy(i, x_i, y_i) when `dfdy` is not nullptr and y needs a gradient (s_i is the
/// output gradient, or the scalar one divided as in the forward).
template <Real T, class F, class DX, class DY>
Tensor<T> pointwise_loss(std::string_view op, const Tensor<T>& x, const Tensor<T>& y, Reduction reduction,
                         double mean_divisor, F f, DX dfdx, DY dfdy) {
  constexpr bool kDiffY = !std::is_same_v<DY, std::nullptr_t>;
  check_cpu(x, op);
  check_cpu(y, op);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  const Tensor<T> yc = y.contiguous_copy_if_needed();
  const std::int64_t n = xc.numel();
  const T* px = xc.data();
  const T* py = yc.data();
  Tensor<T> out;
  if (reduction == Reduction::None) {
    out = Tensor<T>::empty(x.shape());
    T* po = out.data();
#pragma omp parallel for if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) po[i] = f(i, px[i], py[i]);
  } else {
    double acc = 0;
#pragma omp parallel for reduction(+ : acc) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) acc += f(i, px[i], py[i]);
    out = Tensor<T>::scalar(static_cast<T>(reduction == Reduction::Mean ? acc / mean_divisor : acc));
  }
  const bool gx = needs_grad(x), gy = kDiffY && needs_grad(y);
  Tensor<T> y_input = kDiffY ? y : Tensor<T>();
  return record(op, out, {x, y_input},
                [xc, yc, reduction, mean_divisor, dfdx, dfdy, gx, gy](const Tensor<T>& g) {
                  const std::int64_t n = xc.numel();
                  const T* px = xc.data();
                  const T* py = yc.data();
                  const Tensor<T> gc = g.contiguous_copy_if_needed();
                  const T* pg = gc.data();
                  const bool per_element = reduction == Reduction::None;
                  const T scale = per_element ? T(0)
                                  : reduction == Reduction::Mean ? static_cast<T>(double(pg[0]) / mean_divisor)
                                                                 : pg[0];
                  Tensor<T> dx = gx ? Tensor<T>::empty(xc.shape()) : Tensor<T>();
                  Tensor<T> dy = gy ? Tensor<T>::empty(yc.shape()) : Tensor<T>();
                  T* pdx = gx ? dx.data() : nullptr;
                  T* pdy = gy ? dy.data() : nullptr;
#pragma omp parallel for if (n > kParallelGrain)
                  for (std::int64_t i = 0; i < n; ++i) {
                    const T s = per_element ? pg[i] : scale;
                    if (pdx) pdx[i] = s * dfdx(i, px[i], py[i]);
                    if constexpr (kDiffY) {
                      if (pdy) pdy[i] = s * dfdy(i, px[i], py[i]);
                    }
                  }
                  return std::vector<Tensor<T>>{dx, dy};
                });
}

/// Throws naming `op` unless a and b are defined and have the same shape (any device).
template <Real T>
void check_same_shape(std::string_view op, const Tensor<T>& input, const Tensor<T>& target) {
  GKD_CHECK(input.defined() && target.defined(), op, "input or target is an undefined tensor");
  GKD_CHECK(input.shape() == target.shape(), op,
            "input of shape " << to_string(input.shape()) << " and target of shape " << to_string(target.shape())
                              << " must have the same shape");
}

/// True when a loss on these tensors runs on a GPU (composed of device ops; the kernels check that
/// all operands share the device).
template <Real T>
bool on_device(const Tensor<T>& a, const Tensor<T>& b) {
  return a.device().is_cuda() || b.device().is_cuda();
}

/// A per-element loss map `l` reduced with device-capable ops (Mean divides by `mean_divisor`).
template <Real T>
Tensor<T> reduce_loss(const Tensor<T>& l, Reduction reduction, double mean_divisor) {
  if (reduction == Reduction::None) return l;
  const Tensor<T> s = sum(l);
  return reduction == Reduction::Sum ? s : mul(s, static_cast<T>(1.0 / mean_divisor));
}

}  // namespace detail

}  // namespace gkd
