// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Matrix products through Eigen's GEMM: `matmul` (2-D, or batched N-D with equal batch dims),
/// `bmm` (3-D) and `linear` (y = x Wᵀ + b over the last dim, PyTorch's layout).
///
/// Example: `auto y = gkd::linear(x, w, b);   // x [B, 256], w [64, 256], b [64] -> [B, 64]`
#include <Eigen/Core>

#include "gkd/ops/autocast.hpp"
#include "gkd/ops/reduce.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/linalg.hpp"
#endif

namespace gkd {

namespace detail {

template <Real T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <Real T>
using ConstMap = Eigen::Map<const RowMatrix<T>>;
template <Real T>
using MutMap = Eigen::Map<RowMatrix<T>>;

/// C[b] = op(A[b]) * op(B[b]) for contiguous row-major batches; `accumulate` adds into C.
template <Real T>
void gemm_batched(const T* a, const T* b, T* c, std::int64_t batch, std::int64_t m, std::int64_t k,
                  std::int64_t n, bool trans_a, bool trans_b, bool accumulate = false) {
  for (std::int64_t i = 0; i < batch; ++i) {
    const T* ai = a + i * m * k;
    const T* bi = b + i * k * n;
    MutMap<T> ci(c + i * m * n, m, n);
    auto run = [&](const auto& lhs, const auto& rhs) {
      if (accumulate)
        ci.noalias() += lhs * rhs;
      else
        ci.noalias() = lhs * rhs;
    };
    if (!trans_a && !trans_b) run(ConstMap<T>(ai, m, k), ConstMap<T>(bi, k, n));
    if (!trans_a && trans_b) run(ConstMap<T>(ai, m, k), ConstMap<T>(bi, n, k).transpose());
    if (trans_a && !trans_b) run(ConstMap<T>(ai, k, m).transpose(), ConstMap<T>(bi, k, n));
    if (trans_a && trans_b) run(ConstMap<T>(ai, k, m).transpose(), ConstMap<T>(bi, n, k).transpose());
  }
}

}  // namespace detail

/// a @ b: [.., M, K] x [.., K, N] -> [.., M, N] with identical leading (batch) dims, or 2-D.
template <Real T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(a.device(), b.device()), "matmul", matmul(a, b));
  detail::check_cpu(a, "matmul");
  detail::check_cpu(b, "matmul");
  GKD_CHECK(a.dim() >= 2 && a.dim() == b.dim(), "matmul",
            "needs two tensors of equal rank >= 2, got " << to_string(a.shape()) << " and " << to_string(b.shape()));
  const std::size_t r = a.dim();
  GKD_CHECK(Shape(a.shape().begin(), a.shape().end() - 2) == Shape(b.shape().begin(), b.shape().end() - 2) &&
                a.shape()[r - 1] == b.shape()[r - 2],
            "matmul", "shapes " << to_string(a.shape()) << " and " << to_string(b.shape()) << " do not chain");
  const std::int64_t m = a.shape()[r - 2], k = a.shape()[r - 1], n = b.shape()[r - 1];
  const std::int64_t batch = a.numel() / std::max<std::int64_t>(m * k, 1);
  Shape out_shape = a.shape();
  out_shape[r - 1] = n;
  const Precision p = detail::autocast_for<T>();
  const Tensor<T> ac = detail::rounded_copy(a, p);
  const Tensor<T> bc = detail::rounded_copy(b, p);
  Tensor<T> y = Tensor<T>::empty(out_shape);
  if (m * k * n == 0 || batch == 0) std::fill_n(y.data(), y.numel(), T(0));
  else detail::gemm_batched(ac.data(), bc.data(), y.data(), batch, m, k, n, false, false);
  detail::round_in_place(y, p);
  const bool ga = needs_grad(a), gb = needs_grad(b);
  // Each operand is kept only for the other's gradient.
  return record("matmul", y, {a, b}, [ac = gb ? ac : Tensor<T>(), bc = ga ? bc : Tensor<T>(), sa = a.shape(),
                                      sb = b.shape(), batch, m, k, n, ga, gb, p](const Tensor<T>& g) {
    const Tensor<T> gc = detail::rounded_copy(g, p);
    Tensor<T> da, db;
    if (ga) {  // dA = dY Bᵀ
      da = Tensor<T>::zeros(sa);
      if (m * k * n != 0) detail::gemm_batched(gc.data(), bc.data(), da.data(), batch, m, n, k, false, true);
    }
    if (gb) {  // dB = Aᵀ dY
      db = Tensor<T>::zeros(sb);
      if (m * k * n != 0) detail::gemm_batched(ac.data(), gc.data(), db.data(), batch, k, m, n, true, false);
    }
    detail::round_in_place(da, p), detail::round_in_place(db, p);
    return std::vector<Tensor<T>>{da, db};
  });
}

/// Batched matrix product of two 3-D tensors [B, M, K] x [B, K, N].
template <Real T>
Tensor<T> bmm(const Tensor<T>& a, const Tensor<T>& b) {
  GKD_CHECK(a.dim() == 3 && b.dim() == 3, "bmm",
            "needs 3-D tensors, got " << to_string(a.shape()) << " and " << to_string(b.shape()));
  return matmul(a, b);
}

/// y = x Wᵀ + b over the last dim of x: x [..., in], weight [out, in], bias [out] (optional).
template <Real T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>()) {
  GKD_CUDA_DISPATCH(x.device(), "linear", linear(x, weight, bias));
  detail::check_cpu(x, "linear");
  detail::check_cpu(weight, "linear");
  GKD_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.shape().back() == weight.shape()[1], "linear",
            "input " << to_string(x.shape()) << " does not match weight " << to_string(weight.shape())
                     << " (expected [..., in] and [out, in])");
  GKD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == weight.shape()[0]), "linear",
            "bias " << to_string(bias.shape()) << " does not match weight " << to_string(weight.shape()));
  const std::int64_t in = weight.shape()[1], out = weight.shape()[0];
  const std::int64_t rows = numel(Shape(x.shape().begin(), x.shape().end() - 1));  // right even when in == 0
  Shape out_shape = x.shape();
  out_shape.back() = out;
  const Precision p = detail::autocast_for<T>();
  const Tensor<T> xc = detail::rounded_copy(x, p);
  const Tensor<T> wc = detail::rounded_copy(weight, p);
  Tensor<T> y = Tensor<T>::empty(out_shape);
  detail::MutMap<T> ym(y.data(), rows, out);
  if (in == 0) ym.setZero();
  else ym.noalias() = detail::ConstMap<T>(xc.data(), rows, in) * detail::ConstMap<T>(wc.data(), out, in).transpose();
  if (bias.defined()) {
    const Tensor<T> bc = detail::rounded_copy(bias, p);
    ym.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(bc.data(), out);
  }
  detail::round_in_place(y, p);
  const bool gx = needs_grad(x), gw = needs_grad(weight), gbias = needs_grad(bias);
  // The input is kept only for the weight's gradient and the weight only for the input's.
  return record("linear", y, {x, weight, bias}, [xc = gw ? xc : Tensor<T>(), wc = gx ? wc : Tensor<T>(),
                                                 sx = x.shape(), sw = weight.shape(), rows, in, out, gx, gw, gbias,
                                                 p](const Tensor<T>& g) {
    const Tensor<T> gc = detail::rounded_copy(g, p);
    detail::ConstMap<T> gm(gc.data(), rows, out);
    Tensor<T> dx, dw, db;
    if (gx) {
      dx = Tensor<T>::empty(sx);
      detail::MutMap<T>(dx.data(), rows, in).noalias() = gm * detail::ConstMap<T>(wc.data(), out, in);
    }
    if (gw) {
      dw = Tensor<T>::empty(sw);
      detail::MutMap<T>(dw.data(), out, in).noalias() = gm.transpose() * detail::ConstMap<T>(xc.data(), rows, in);
    }
    if (gbias) {
      db = Tensor<T>::empty({out});
      Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(db.data(), out) = gm.colwise().sum();
    }
    for (Tensor<T>* d : {&dx, &dw, &db}) detail::round_in_place(*d, p);
    return std::vector<Tensor<T>>{dx, dw, db};
  });
}

}  // namespace gkd

GKD_REGISTER_OPS(linalg, "matmul", "linear")
