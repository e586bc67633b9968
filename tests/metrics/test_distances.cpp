// SPDX-License-Identifier: Apache-2.0
// Hausdorff/HD95 (data.md vector, empty conventions, golden values recomputed by brute force in
// tools/golden/metrics.py) and the Fréchet distance test vectors of data.md §3.3 within 1e-9.
#include <gkd/metrics/frechet.hpp>
#include <gkd/metrics/hausdorff.hpp>

#include <catch2/catch.hpp>
#include <cmath>

#include "support/golden.hpp"

using gkd::Tensor;
namespace gm = gkd::metrics;

TEST_CASE("data.md 6x6 grid: Hausdorff 1.0", "[metrics]") {
  auto gt = Tensor<float>::zeros({6, 6}), pred = Tensor<float>::zeros({6, 6});
  for (int r = 1; r <= 3; ++r)
    for (int c = 1; c <= 3; ++c) gt.at({r, c}) = 1.f, pred.at({r, c + 1}) = 1.f;
  const auto d = gm::hausdorff(pred, gt);
  CHECK(d.hd == 1.0);
  CHECK(d.hd95 == 1.0);
  CHECK(gm::hausdorff(gt, gt).hd == 0.0);
}

TEST_CASE("Hausdorff empty-mask conventions: both empty 0, one empty NaN, bad shapes throw", "[metrics]") {
  const auto empty = Tensor<float>::zeros({5, 5});
  auto one = Tensor<float>::zeros({5, 5});
  one.at({2, 2}) = 1.f;
  CHECK(gm::hausdorff(empty, empty).hd == 0.0);
  CHECK(gm::hausdorff(empty, empty).hd95 == 0.0);
  CHECK(std::isnan(gm::hausdorff(one, empty).hd));
  CHECK(std::isnan(gm::hausdorff(empty, one).hd95));
  CHECK_THROWS_AS(gm::hausdorff(one, Tensor<float>::zeros({5, 4})), gkd::Error);
  CHECK_THROWS_AS(gm::hausdorff(Tensor<float>::zeros({1, 5, 5}), Tensor<float>::zeros({1, 5, 5})), gkd::Error);
}

TEST_CASE("Hausdorff and HD95 match the brute-force reference on blob masks, with spacing", "[metrics][golden]") {
  const gkd::test::Golden golden("metrics");
  for (int i = 0; i < 2; ++i) {
    const std::string k = "hd.case" + std::to_string(i);
    const auto a = golden.get<double>(k + ".a"), b = golden.get<double>(k + ".b");
    const auto unit = gm::hausdorff(a, b);
    CHECK(unit.hd == Approx(golden.scalar(k + ".unit.hd")).epsilon(1e-12));
    CHECK(unit.hd95 == Approx(golden.scalar(k + ".unit.hd95")).epsilon(1e-12));
    const auto spaced = gm::hausdorff(a, b, {0.7, 1.3});
    CHECK(spaced.hd == Approx(golden.scalar(k + ".spaced.hd")).epsilon(1e-12));
    CHECK(spaced.hd95 == Approx(golden.scalar(k + ".spaced.hd95")).epsilon(1e-12));
  }
}

namespace {
Eigen::MatrixXd mat(int n, std::initializer_list<double> v) {
  Eigen::MatrixXd m(n, n);
  auto it = v.begin();
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) m(r, c) = *it++;
  return m;
}
Eigen::VectorXd vec(std::initializer_list<double> v) {
  Eigen::VectorXd x(static_cast<Eigen::Index>(v.size()));
  int i = 0;
  for (double e : v) x(i++) = e;
  return x;
}
}  // namespace

TEST_CASE("Frechet distance: data.md §3.3 vectors A-F within 1e-9", "[metrics]") {
  using Eigen::MatrixXd;
  const MatrixXd I2 = MatrixXd::Identity(2, 2);
  CHECK(std::abs(gm::frechet_distance(vec({0, 0}), I2, vec({1, 2}), mat(2, {4, 0, 0, 9})) - 10.0) < 1e-9);
  CHECK(std::abs(gm::frechet_distance(vec({1, 0}), mat(2, {2, 1, 1, 2}), vec({0, 1}), mat(2, {1, 0, 0, 3})) -
                 2.5166852264521) < 1e-9);
  const MatrixXd c1 = mat(3, {4, 2, 0.6, 2, 2, 0.4, 0.6, 0.4, 3});
  const MatrixXd c2 = mat(3, {1, 0.5, 0, 0.5, 1, 0.5, 0, 0.5, 1});
  CHECK(std::abs(gm::frechet_distance(vec({0.5, -1, 2}), c1, vec({0, 0, 1}), c2) - 4.16257181744202) < 1e-9);
  CHECK(std::abs(gm::frechet_distance(vec({1, 2, 3}), c1, vec({1, 2, 3}), c1)) < 1e-9);
  const Eigen::VectorXd zero = Eigen::VectorXd::Zero(2048), ones = Eigen::VectorXd::Ones(2048);
  const MatrixXd I = MatrixXd::Identity(2048, 2048);
  CHECK(std::abs(gm::frechet_distance(zero, I, ones, I) - 2048.0) < 1e-9);
  CHECK(std::abs(gm::frechet_distance(vec({0, 0}), I2, vec({0, 0}), mat(2, {1, 1, 1, 1})) - (4 - 2 * std::sqrt(2.0))) <
        1e-9);
}

TEST_CASE("Frechet distance: general path equals the eigenvalues of Σ1·Σ2 (non-symmetric route)", "[metrics]") {
  gkd::Generator gen(11);
  const auto x = gkd::randn<double>({80, 24}, gen), y = gkd::randn<double>({90, 24}, gen, 0.3, 1.5);
  const auto a = gm::fit_gaussian(x), b = gm::fit_gaussian(y);
  Eigen::EigenSolver<Eigen::MatrixXd> es(a.covariance * b.covariance);
  double tr = 0;
  for (Eigen::Index i = 0; i < es.eigenvalues().size(); ++i) tr += std::sqrt(std::max(0.0, es.eigenvalues()(i).real()));
  const double ref = (a.mean - b.mean).squaredNorm() + a.covariance.trace() + b.covariance.trace() - 2 * tr;
  CHECK(gm::frechet_distance(a, b) == Approx(ref).epsilon(1e-10));
  CHECK(gm::frechet_distance(a, b, 1e-6) == Approx(ref).epsilon(1e-5));  // pytorch-fid's eps changes little
}

TEST_CASE("Frechet distance from samples: unbiased covariance, rank-deficient sets, symmetry", "[metrics]") {
  gkd::Generator gen(3);
  const auto a = gkd::randn<double>({40, 6}, gen), b = gkd::randn<double>({30, 6}, gen, 0.5, 2.0);
  const auto g = gm::fit_gaussian(a);
  CHECK(g.covariance.rows() == 6);
  // the unbiased variance of column 0 by hand
  double mean = 0, var = 0;
  for (int i = 0; i < 40; ++i) mean += a.at({i, 0}) / 40;
  for (int i = 0; i < 40; ++i) var += (a.at({i, 0}) - mean) * (a.at({i, 0}) - mean) / 39;
  CHECK(g.covariance(0, 0) == Approx(var).epsilon(1e-12));
  const double ab = gm::frechet_distance(a, b), ba = gm::frechet_distance(b, a);
  CHECK(ab == Approx(ba).epsilon(1e-9));
  CHECK(ab > 0);
  // fewer samples than dimensions: covariances are singular, the result stays finite and >= 0
  const auto few_a = gkd::randn<double>({4, 16}, gen), few_b = gkd::randn<double>({5, 16}, gen);
  const double d = gm::frechet_distance(few_a, few_b);
  CHECK(std::isfinite(d));
  CHECK(d >= 0);
  CHECK(gm::frechet_distance(few_a, few_a) < 1e-9);
  CHECK_THROWS_AS(gm::frechet_distance(a, gkd::randn<double>({10, 5}, gen)), gkd::Error);
}
