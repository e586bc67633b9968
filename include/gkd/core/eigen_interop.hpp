// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Zero-copy bridges between gkd tensors and Eigen. Maps alias the tensor's memory: keep the tensor
/// alive while a map is in use. Nothing here returns a lazy Eigen expression; assign maps to
/// concrete matrices when you need a copy.
///
/// Example:
/// @code
///   auto t = gkd::Tensor<float>::zeros({3, 4});
///   auto m = gkd::as_eigen(t);           // Eigen::Map of a 3x4 row-major matrix, same memory
///   m(1, 2) = 5.f;                       // t.at({1, 2}) == 5
///   auto back = gkd::from_eigen(Eigen::MatrixXf::Identity(2, 2));  // a copy
/// @endcode
#include <Eigen/Core>

#include "gkd/core/tensor.hpp"

namespace gkd {

/// Row-major dynamic matrix of T (gkd's layout).
template <Real T>
using EigenMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A mutable Eigen view of a contiguous 1-D or 2-D tensor (a 1-D tensor maps as one row).
/// @pre t is contiguous and has 1 or 2 dims
template <Real T>
Eigen::Map<EigenMatrix<T>> as_eigen(const Tensor<T>& t) {
  GKD_CHECK(t.defined() && t.device() == kCPU, "as_eigen", "needs a defined host tensor");
  GKD_CHECK((t.dim() == 1 || t.dim() == 2) && t.is_contiguous(), "as_eigen",
            "needs a contiguous 1-D or 2-D tensor, got shape " << to_string(t.shape())
                                                               << (t.is_contiguous() ? "" : " (non-contiguous)"));
  const std::int64_t rows = t.dim() == 2 ? t.shape()[0] : 1;
  return Eigen::Map<EigenMatrix<T>>(t.data(), rows, t.shape().back());
}

/// A tensor of shape [rows, cols] copied from any Eigen matrix expression.
template <class Derived>
Tensor<typename Derived::Scalar> from_eigen(const Eigen::MatrixBase<Derived>& m) {
  using T = typename Derived::Scalar;
  Tensor<T> t = Tensor<T>::empty({m.rows(), m.cols()});
  Eigen::Map<EigenMatrix<T>>(t.data(), m.rows(), m.cols()) = m;
  return t;
}

/// A tensor that aliases an Eigen matrix's memory (no copy), with the matrix's own storage order.
/// The matrix must outlive the tensor.
template <class Derived>
Tensor<typename Derived::Scalar> borrow_eigen(Eigen::PlainObjectBase<Derived>& m) {
  const std::int64_t rows = m.rows(), cols = m.cols();
  const bool row_major = Derived::IsRowMajor;
  return Tensor<typename Derived::Scalar>::borrow(m.data(), {rows, cols},
                                                  row_major ? Strides{cols, 1} : Strides{1, rows});
}

}  // namespace gkd
