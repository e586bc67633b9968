// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// L2 normalisation and cosine similarity along a dim (F.normalize with p = 2, F.cosine_similarity),
/// as fused differentiable kernels.
///
/// Formulas, per slice along `dim` (n = ||x||₂):
///   normalize(x)            = x / max(n, eps)
///   cosine_similarity(a, b) = Σ a b / (max(||a||, eps) · max(||b||, eps))
/// As in PyTorch, the gradient of `normalize` does not flow through the norm where it is clamped
/// (n < eps), while `cosine_similarity` differentiates the unclamped norm (PyTorch clamps it in
/// place under no_grad). On a GPU both are composed of device ops (sums in T, not double).
/// Example (feature-map similarity for distillation):
/// @code
///   auto s = gkd::cosine_similarity(student_feat, teacher_feat, 1);   // [N, C, H, W] x2 -> [N, H, W]
/// @endcode
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "gkd/ops/elementwise.hpp"
#include "gkd/ops/reduce.hpp"

namespace gkd {

namespace detail {

/// max(||x||₂, eps) along dim `d` (kept) from device ops. The gradient flows through the norm where it
/// is not clamped (normalize), or everywhere as if unclamped (`through_clamp`, cosine_similarity);
/// never through a zero norm.
template <Real T>
Tensor<T> clamped_norm(const Tensor<T>& x, std::size_t d, T eps, bool through_clamp) {
  const T inf = std::numeric_limits<T>::infinity();
  const Tensor<T> squares = sum(mul(x, x), {static_cast<std::int64_t>(d)}, true);
  const Tensor<T> value = clamp(sqrt(squares), eps, inf);
  const T floor = std::max(through_clamp ? T(0) : eps * eps, std::numeric_limits<T>::min());
  const Tensor<T> graded = sqrt(clamp(squares, floor, inf));  // carries the gradient; `value` the value
  return add(graded, sub(value, graded).detach());
}

/// The (outer, len, inner) view of a contiguous tensor of `shape` along dim `d`.
struct DimLayout {
  std::int64_t outer = 1, len = 1, inner = 1;
  DimLayout(const Shape& shape, std::size_t d) {
    for (std::size_t k = 0; k < shape.size(); ++k) (k < d ? outer : k == d ? len : inner) *= shape[k];
  }
  /// Offset of element 0 of the slice at position p in [0, outer * inner).
  [[nodiscard]] std::int64_t base(std::int64_t p) const { return (p / inner) * len * inner + p % inner; }
  [[nodiscard]] std::int64_t positions() const { return outer * inner; }
};

}  // namespace detail

/// x / max(||x||₂, eps) along `dim` (F.normalize(x, p=2, dim, eps)).
/// @throws gkd::Error for a bad dim or a negative eps
template <Real T>
Tensor<T> normalize(const Tensor<T>& x, std::int64_t dim = 1, std::type_identity_t<T> eps = T(1e-12)) {
  GKD_CHECK(x.defined(), "normalize", "input is an undefined tensor");
  GKD_CHECK(eps >= 0, "normalize", "eps must be non-negative, got " << eps << " for shape " << to_string(x.shape()));
  const std::size_t d = normalize_dim(dim, std::max<std::size_t>(x.dim(), 1), "normalize");
  if (x.device().is_cuda() && x.dim() > 0) return div(x, detail::clamped_norm(x, d, T(eps), false));
  detail::check_cpu(x, "normalize");
  const detail::DimLayout lay(x.shape(), d);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(x.shape());
  auto norms = std::make_shared<std::vector<T>>(static_cast<std::size_t>(lay.positions()));
  {
    const T* src = xc.data();
    T* dst = y.data();
    T* nrm = norms->data();
    const std::int64_t m = lay.positions();
#pragma omp parallel for if (x.numel() > detail::kParallelGrain)
    for (std::int64_t p = 0; p < m; ++p) {
      const std::int64_t b = lay.base(p);
      double acc = 0;
      for (std::int64_t k = 0; k < lay.len; ++k) acc += double(src[b + k * lay.inner]) * src[b + k * lay.inner];
      const T n = static_cast<T>(std::sqrt(acc));
      const T den = std::max(n, T(eps));
      for (std::int64_t k = 0; k < lay.len; ++k) dst[b + k * lay.inner] = src[b + k * lay.inner] / den;
      nrm[p] = n;
    }
  }
  return record("normalize", y, {x}, [xc, norms, lay, eps = T(eps)](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(xc.shape());
    const T* gp = gc.data();
    const T* xp = xc.data();
    T* dp = dx.data();
    const T* nrm = norms->data();
    const std::int64_t m = lay.positions();
    // y = x / d with d = max(n, eps): dx = g / d - [n >= eps] x (g·x) / (d² n)
#pragma omp parallel for if (xc.numel() > detail::kParallelGrain)
    for (std::int64_t p = 0; p < m; ++p) {
      const std::int64_t b = lay.base(p);
      const T n = nrm[p], den = std::max(n, eps);
      T coef = 0;
      if (n >= eps && n > 0) {
        double dot = 0;
        for (std::int64_t k = 0; k < lay.len; ++k) dot += double(gp[b + k * lay.inner]) * xp[b + k * lay.inner];
        coef = static_cast<T>(dot / (double(den) * den * n));
      }
      for (std::int64_t k = 0; k < lay.len; ++k) {
        const std::int64_t j = b + k * lay.inner;
        dp[j] = gp[j] / den - xp[j] * coef;
      }
    }
    return std::vector<Tensor<T>>{dx};
  });
}

/// Cosine similarity along `dim` with PyTorch's formula Σ a b / (max(||a||, eps) max(||b||, eps));
/// a and b broadcast, the result drops `dim` of the broadcast shape. Differentiable w.r.t. both.
/// @throws gkd::Error when the shapes do not broadcast, for a bad dim or a negative eps
template <Real T>
Tensor<T> cosine_similarity(const Tensor<T>& a, const Tensor<T>& b, std::int64_t dim = 1,
                            std::type_identity_t<T> eps = T(1e-8)) {
  GKD_CHECK(a.defined() && b.defined(), "cosine_similarity", "an input is an undefined tensor");
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "cosine_similarity");
  GKD_CHECK(eps >= 0, "cosine_similarity",
            "eps must be non-negative, got " << eps << " for shapes " << to_string(a.shape()) << " and "
                                             << to_string(b.shape()));
  GKD_CHECK(!shape.empty(), "cosine_similarity",
            "needs at least one dim, got shapes " << to_string(a.shape()) << " and " << to_string(b.shape()));
  const std::size_t d = normalize_dim(dim, shape.size(), "cosine_similarity");
  if (detail::dispatch_device(a.device(), b.device()).is_cuda()) {
    const Tensor<T> ae = a.expand(shape), be = b.expand(shape);
    const Tensor<T> den = mul(detail::clamped_norm(ae, d, T(eps), true), detail::clamped_norm(be, d, T(eps), true));
    return div(sum(mul(ae, be), {static_cast<std::int64_t>(d)}, true), den).squeeze(static_cast<std::int64_t>(d));
  }
  detail::check_cpu(a, "cosine_similarity");
  detail::check_cpu(b, "cosine_similarity");
  const detail::DimLayout lay(shape, d);
  const Tensor<T> ac = a.detach().expand(shape).contiguous_copy_if_needed();
  const Tensor<T> bc = b.detach().expand(shape).contiguous_copy_if_needed();
  Shape out_shape = shape;
  out_shape.erase(out_shape.begin() + static_cast<std::ptrdiff_t>(d));
  Tensor<T> y = Tensor<T>::empty(out_shape);
  const std::int64_t m = lay.positions();
  // per position: ||a||, ||b|| (unclamped) and the cosine
  auto saved = std::make_shared<std::vector<T>>(static_cast<std::size_t>(2 * m));
  {
    const T* pa = ac.data();
    const T* pb = bc.data();
    T* out = y.data();
    T* sv = saved->data();
#pragma omp parallel for if (ac.numel() > detail::kParallelGrain)
    for (std::int64_t p = 0; p < m; ++p) {
      const std::int64_t base = lay.base(p);
      double dot = 0, aa = 0, bb = 0;
      for (std::int64_t k = 0; k < lay.len; ++k) {
        const double u = pa[base + k * lay.inner], v = pb[base + k * lay.inner];
        dot += u * v;
        aa += u * u;
        bb += v * v;
      }
      const double na = std::sqrt(aa), nb = std::sqrt(bb);
      out[p] = static_cast<T>(dot / (std::max(na, double(eps)) * std::max(nb, double(eps))));
      sv[2 * p] = static_cast<T>(na);
      sv[2 * p + 1] = static_cast<T>(nb);
    }
  }
  const bool ga = needs_grad(a), gb = needs_grad(b);
  return record("cosine_similarity", y, {a, b},
                [ac, bc, y = y.detach(), saved, lay, eps = T(eps), sa = a.shape(), sb = b.shape(), ga,
                 gb](const Tensor<T>& g) {
                  const Tensor<T> gc = g.contiguous_copy_if_needed();
                  Tensor<T> da = ga ? Tensor<T>::empty(ac.shape()) : Tensor<T>();
                  Tensor<T> db = gb ? Tensor<T>::empty(bc.shape()) : Tensor<T>();
                  const T* pa = ac.data();
                  const T* pb = bc.data();
                  const T* cs = y.data();
                  const T* gp = gc.data();
                  const T* sv = saved->data();
                  const std::int64_t m = lay.positions();
                  // d cos / d a_k = b_k / (da db) - cos a_k / (da ||a||)   (da = max(||a||, eps))
#pragma omp parallel for if (ac.numel() > detail::kParallelGrain)
                  for (std::int64_t p = 0; p < m; ++p) {
                    const std::int64_t base = lay.base(p);
                    const T na = sv[2 * p], nb = sv[2 * p + 1];
                    const T dena = std::max(na, eps), denb = std::max(nb, eps);
                    const T cross = gp[p] / (dena * denb);
                    const T self_a = na > 0 ? gp[p] * cs[p] / (dena * na) : T(0);
                    const T self_b = nb > 0 ? gp[p] * cs[p] / (denb * nb) : T(0);
                    for (std::int64_t k = 0; k < lay.len; ++k) {
                      const std::int64_t j = base + k * lay.inner;
                      if (ga) da.data()[j] = cross * pb[j] - self_a * pa[j];
                      if (gb) db.data()[j] = cross * pa[j] - self_b * pb[j];
                    }
                  }
                  return std::vector<Tensor<T>>{ga ? detail::sum_to(da, sa) : Tensor<T>(),
                                                gb ? detail::sum_to(db, sb) : Tensor<T>()};
                });
}

}  // namespace gkd

GKD_REGISTER_OPS(similarity, "normalize", "cosine_similarity")
