// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Fréchet distance between two Gaussians fitted to two sets of feature vectors — the FSD (Fréchet
/// Semantic Distance) of GKD (method.md §8) on MSAN latent codes, and FID's formula on any features:
///
///   d² = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁ Σ₂)^{1/2})
///
/// The trace of the matrix square root is taken in the symmetric form
/// Tr((Σ₁Σ₂)^{1/2}) = Σᵢ √λᵢ(Σ₁^{1/2} Σ₂ Σ₁^{1/2}) with two self-adjoint eigen decompositions (Eigen's
/// SelfAdjointEigenSolver); eigenvalues below zero from rounding are clamped to 0, so singular and
/// rank-deficient covariances (fewer samples than dimensions) need no ε. `eps` > 0 adds ε·I to both
/// covariances (pytorch-fid's fallback) when a caller wants to match it. Results are clamped at 0.
/// Diagonal matrices (Σ₁, and Σ₁^{1/2}Σ₂Σ₁^{1/2}) skip the O(d³) decompositions: their square root and
/// eigenvalues are their diagonal's.
/// Covariances are unbiased (divide by N − 1), as numpy's `np.cov` in pytorch-fid.
///
/// @code
/// // rows are samples: latent codes of the source-domain and target-domain test patches, [N, 512]
/// double fsd = gkd::metrics::frechet_distance(source_codes, target_codes);
/// auto g = gkd::metrics::fit_gaussian(source_codes);  // Gaussian<double>: g.mean, g.covariance (Eigen)
/// @endcode
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <concepts>
#include <type_traits>

#include "gkd/core/error.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::metrics {

/// Mean and unbiased covariance of a set of vectors. Scalar `S` is double unless a caller chooses float.
template <std::floating_point S = double>
struct Gaussian {
  Eigen::Matrix<S, Eigen::Dynamic, 1> mean;
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> covariance;
};

/// Fits a Gaussian (in double) to the rows of an N×D tensor (N ≥ 2).
template <Real T>
Gaussian<double> fit_gaussian(const Tensor<T>& samples) {
  GKD_CHECK(samples.dim() == 2 && samples.size(0) >= 2 && samples.size(1) >= 1, "fit_gaussian",
            "expects an N×D tensor with N >= 2 samples, got " << to_string(samples.shape()));
  const Tensor<T> s = samples.cpu().contiguous();
  const Eigen::Index n = s.size(0), d = s.size(1);
  Eigen::MatrixXd x = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(s.data(), n, d)
                          .template cast<double>();
  Gaussian<double> g;
  g.mean = x.colwise().mean().transpose();
  x.rowwise() -= g.mean.transpose();
  g.covariance = (x.transpose() * x) / double(n - 1);
  return g;
}

namespace detail {
template <class Matrix>
bool is_diagonal(const Matrix& a) {
  for (Eigen::Index c = 0; c < a.cols(); ++c)
    for (Eigen::Index r = 0; r < a.rows(); ++r)
      if (r != c && a(r, c) != 0) return false;
  return true;
}
/// Symmetric PSD square root through eigendecomposition, negative eigenvalues clamped to 0.
template <class Matrix>
Matrix psd_sqrt(const Matrix& a) {
  Eigen::SelfAdjointEigenSolver<Matrix> es(0.5 * (a + a.transpose()));
  GKD_CHECK(es.info() == Eigen::Success, "frechet_distance", "eigendecomposition did not converge");
  const auto r = es.eigenvalues().cwiseMax(0).cwiseSqrt().eval();
  return es.eigenvectors() * r.asDiagonal() * es.eigenvectors().transpose();
}
}  // namespace detail

/// Fréchet distance d² between N(μ₁, Σ₁) and N(μ₂, Σ₂). (A template, like the whole header: the eigen
/// solver is instantiated only where a program calls it.)
template <std::floating_point S>
S frechet_distance(const Eigen::Matrix<S, Eigen::Dynamic, 1>& mu1,
                   const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& sigma1,
                   const Eigen::Matrix<S, Eigen::Dynamic, 1>& mu2,
                   const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& sigma2, std::type_identity_t<S> eps = 0) {
  using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index d = mu1.size();
  GKD_CHECK(d > 0 && mu2.size() == d && sigma1.rows() == d && sigma1.cols() == d && sigma2.rows() == d &&
                sigma2.cols() == d,
            "frechet_distance",
            "dimensions differ: mu1 " << mu1.size() << ", mu2 " << mu2.size() << ", sigma1 " << sigma1.rows() << "x"
                                      << sigma1.cols() << ", sigma2 " << sigma2.rows() << "x" << sigma2.cols());
  GKD_CHECK(mu1.allFinite() && mu2.allFinite() && sigma1.allFinite() && sigma2.allFinite(), "frechet_distance",
            "inputs contain NaN or infinity");
  GKD_CHECK(eps >= 0, "frechet_distance", "eps " << eps << " is negative");
  const Matrix s1 = sigma1 + eps * Matrix::Identity(d, d);
  const Matrix s2 = sigma2 + eps * Matrix::Identity(d, d);
  Matrix m;
  if (detail::is_diagonal(s1)) {
    const auto r1 = s1.diagonal().cwiseMax(S(0)).cwiseSqrt().eval();
    m = r1.asDiagonal() * s2 * r1.asDiagonal();
  } else {
    const Matrix r1 = detail::psd_sqrt(s1);
    m = r1 * s2 * r1;
  }
  S tr_sqrt = 0;
  if (detail::is_diagonal(m)) {
    tr_sqrt = m.diagonal().cwiseMax(S(0)).cwiseSqrt().sum();
  } else {
    Eigen::SelfAdjointEigenSolver<Matrix> es(0.5 * (m + m.transpose()), Eigen::EigenvaluesOnly);
    GKD_CHECK(es.info() == Eigen::Success, "frechet_distance", "eigendecomposition did not converge");
    tr_sqrt = es.eigenvalues().cwiseMax(S(0)).cwiseSqrt().sum();
  }
  const S value = (mu1 - mu2).squaredNorm() + s1.trace() + s2.trace() - 2 * tr_sqrt;
  return std::max(value, S(0));
}

template <std::floating_point S>
S frechet_distance(const Gaussian<S>& a, const Gaussian<S>& b, std::type_identity_t<S> eps = 0) {
  return frechet_distance(a.mean, a.covariance, b.mean, b.covariance, eps);
}

/// Fréchet distance between the Gaussians fitted to the rows of two N×D / M×D tensors.
template <Real T>
double frechet_distance(const Tensor<T>& a, const Tensor<T>& b, double eps = 0.0) {
  GKD_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), "frechet_distance",
            "expects N×D and M×D sample sets, got " << to_string(a.shape()) << " and " << to_string(b.shape()));
  return frechet_distance(fit_gaussian(a), fit_gaussian(b), eps);
}

}  // namespace gkd::metrics
