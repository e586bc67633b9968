// SPDX-License-Identifier: Apache-2.0
#include <sstream>

#include "gkd/core/eigen_interop.hpp"
#include "gkd/core/xtensor_interop.hpp"
#include "support/check.hpp"

using namespace gkd;

TEST_CASE("creation, shape and element access", "[tensor]") {
  auto t = Tensor<float>::from({2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(t.dim() == 2);
  REQUIRE(t.numel() == 6);
  REQUIRE(t.size(-1) == 3);
  REQUIRE(t.strides() == Strides{3, 1});
  REQUIRE(t.is_contiguous());
  REQUIRE(t.at({1, 2}) == 6.f);
  t.at({0, 0}) = 9.f;
  REQUIRE(t.to_vector()[0] == 9.f);
  REQUIRE(Tensor<double>::scalar(2.5).item() == 2.5);
  REQUIRE(Tensor<double>::arange(4).to_vector() == std::vector<double>{0, 1, 2, 3});
  REQUIRE(reinterpret_cast<std::uintptr_t>(Tensor<float>::zeros({17}).data()) % 64 == 0);
}

TEST_CASE("bad creation and access raise gkd::Error", "[tensor][errors]") {
  REQUIRE_THROWS_WITH(Tensor<float>::from({2, 2}, {1, 2, 3}), Catch::Contains("from") && Catch::Contains("[2, 2]"));
  REQUIRE_THROWS_WITH(Tensor<float>::empty({2, -1}), Catch::Contains("negative"));
  const auto t = Tensor<float>::zeros({2, 3});
  REQUIRE_THROWS_WITH(t.at({2, 0}), Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(t.at({0}), Catch::Contains("1 indices"));
  REQUIRE_THROWS_WITH(t.item(), Catch::Contains("item"));
  REQUIRE_THROWS_WITH(t.size(2), Catch::Contains("dim 2 is out of range"));
}

TEST_CASE("random generators are seeded and have the right moments", "[tensor][random]") {
  Generator g1(7), g2(7);
  const auto a = randn<double>({10000}, g1);
  REQUIRE(a.to_vector() == randn<double>({10000}, g2).to_vector());
  REQUIRE(mean(a).item() == Approx(0.0).margin(0.04));
  REQUIRE(var(a, {0}).item() == Approx(1.0).epsilon(0.05));
  const auto u = rand<double>({10000}, g1, -2.0, 2.0);
  REQUIRE(min(u).item() >= -2.0);
  REQUIRE(max(u).item() < 2.0);
  REQUIRE(mean(bernoulli<double>({10000}, 0.3, g1)).item() == Approx(0.3).margin(0.02));
  REQUIRE_THROWS_AS(bernoulli<double>({2}, 1.5, g1), gkd::Error);
  const auto labels = randint<float>({1000}, 3, g1);
  REQUIRE(max(labels).item() == 2.f);
  REQUIRE(min(labels).item() == 0.f);
}

TEST_CASE("printing is readable and elides long dims", "[tensor]") {
  std::ostringstream out;
  out << Tensor<float>::from({2, 2}, {1, 2, 3, 4});
  REQUIRE(out.str() == "tensor(float32, [2, 2]) [[1, 2], [3, 4]]");
  std::ostringstream longer;
  longer << Tensor<double>::arange(100);
  REQUIRE(longer.str().find("...") != std::string::npos);
  std::ostringstream grad;
  grad << (Tensor<double>::ones({1}).requires_grad() * 2.0);
  REQUIRE(grad.str().find("grad_fn=mul_scalar") != std::string::npos);
}

TEST_CASE("Eigen interop is zero-copy both ways", "[tensor][interop]") {
  auto t = Tensor<float>::zeros({3, 4});
  auto m = as_eigen(t);
  m(1, 2) = 5.f;
  REQUIRE(t.at({1, 2}) == 5.f);
  Eigen::MatrixXd col_major = Eigen::MatrixXd::Random(3, 2);
  auto view = borrow_eigen(col_major);
  REQUIRE(view.at({2, 1}) == col_major(2, 1));
  col_major(0, 1) = 42;
  REQUIRE(view.at({0, 1}) == 42);
  const auto copy = from_eigen(Eigen::Matrix2f::Identity());
  REQUIRE(copy.to_vector() == std::vector<float>{1, 0, 0, 1});
  REQUIRE_THROWS_WITH(as_eigen(t.transpose(0, 1)), Catch::Contains("non-contiguous"));
}

TEST_CASE("xtensor interop adapts strided memory and copies back", "[tensor][interop]") {
  auto t = Tensor<double>::from({2, 3}, {1, 2, 3, 4, 5, 6});
  auto a = as_xtensor(t);
  a(1, 0) = 40;
  REQUIRE(t.at({1, 0}) == 40);
  auto transposed = as_xtensor(t.transpose(0, 1));  // strided view, no copy
  REQUIRE(transposed(2, 1) == 6);
  xt::xarray<double> doubled = transposed * 2.0;  // explicit container (pitfalls.md #2)
  const auto back = from_xtensor(doubled);
  REQUIRE(back.shape() == Shape{3, 2});
  REQUIRE(back.to_vector() == std::vector<double>{2, 80, 4, 10, 6, 12});
}
