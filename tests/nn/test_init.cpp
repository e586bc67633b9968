// SPDX-License-Identifier: Apache-2.0
#include <cmath>

#include "gkd/nn/init.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using namespace gkd::nn::init;

namespace {

struct Moments {
  double mean = 0, std = 0, min = 0, max = 0;
  std::int64_t n = 0;
};

template <Real T>
Moments moments(const Tensor<T>& t) {
  const auto v = t.to_vector();
  Moments m;
  m.n = static_cast<std::int64_t>(v.size());
  m.min = m.max = static_cast<double>(v[0]);
  for (T x : v) {
    m.mean += static_cast<double>(x);
    m.min = std::min(m.min, static_cast<double>(x));
    m.max = std::max(m.max, static_cast<double>(x));
  }
  m.mean /= static_cast<double>(m.n);
  for (T x : v) m.std += (static_cast<double>(x) - m.mean) * (static_cast<double>(x) - m.mean);
  m.std = std::sqrt(m.std / static_cast<double>(m.n - 1));
  return m;
}

/// Sample mean within 5 standard errors of `mean`; sample std within 5 standard errors of `std`
/// (standard error of the std: std * sqrt((kurtosis - 1) / (4 n)), kurtosis 3 normal, 1.8 uniform).
void check_moments(const Moments& m, double mean, double std, double kurtosis) {
  INFO("sample mean " << m.mean << " std " << m.std << " over " << m.n << " vs " << mean << ", " << std);
  CHECK(std::abs(m.mean - mean) <= 5 * std / std::sqrt(static_cast<double>(m.n)));
  CHECK(std::abs(m.std - std) <= 5 * std * std::sqrt((kurtosis - 1) / (4.0 * static_cast<double>(m.n))));
}

constexpr double kNormalKurtosis = 3.0, kUniformKurtosis = 1.8;

}  // namespace

TEST_CASE("gains, fans and the std/bounds of the initializers equal torch.nn.init's exactly", "[golden][nn][init]") {
  const gkd::test::Golden golden("optim");
  CHECK(calculate_gain(Nonlinearity::Linear) == golden.scalar("init.gain.linear"));
  CHECK(calculate_gain(Nonlinearity::Conv) == golden.scalar("init.gain.conv2d"));
  CHECK(calculate_gain(Nonlinearity::Sigmoid) == golden.scalar("init.gain.sigmoid"));
  CHECK(calculate_gain(Nonlinearity::Tanh) == golden.scalar("init.gain.tanh"));
  CHECK(calculate_gain(Nonlinearity::Relu) == golden.scalar("init.gain.relu"));
  CHECK(calculate_gain(Nonlinearity::Selu) == golden.scalar("init.gain.selu"));
  CHECK(calculate_gain(Nonlinearity::LeakyRelu) == golden.scalar("init.gain.leaky_relu.None"));
  CHECK(calculate_gain(Nonlinearity::LeakyRelu, 0.0) == golden.scalar("init.gain.leaky_relu.0.0"));
  CHECK(calculate_gain(Nonlinearity::LeakyRelu, 0.2) == golden.scalar("init.gain.leaky_relu.0.2"));
  CHECK(calculate_gain(Nonlinearity::LeakyRelu, 0.01) == golden.scalar("init.gain.leaky_relu.0.01"));
  CHECK(calculate_gain(Nonlinearity::LeakyRelu, std::sqrt(5.0)) ==
        golden.scalar("init.gain.leaky_relu.2.23606797749979"));

  const std::vector<std::pair<std::string, Shape>> shapes{
      {"linear", {7, 3}}, {"conv", {16, 8, 3, 5}}, {"conv3d", {4, 2, 3, 3, 3}}, {"vector2", {1, 9}}};
  for (const auto& [name, shape] : shapes) {
    INFO(name << " " << to_string(shape));
    const Fans fans = compute_fans(shape);
    const Tensor<double> expected = golden.get<double>("init.fans." + name);
    CHECK(static_cast<double>(fans.fan_in) == expected.at({0}));
    CHECK(static_cast<double>(fans.fan_out) == expected.at({1}));
    CHECK(std::sqrt(3.0) * kaiming_std(shape, std::sqrt(5.0)) == golden.scalar("init.kaiming_uniform_bound." + name));
    CHECK(kaiming_std(shape, 0, FanMode::FanOut, Nonlinearity::Relu) ==
          golden.scalar("init.kaiming_normal_std_fan_out." + name));
    const double tanh_gain = calculate_gain(Nonlinearity::Tanh);
    CHECK(std::sqrt(3.0) * xavier_std(shape, tanh_gain) == golden.scalar("init.xavier_uniform_bound." + name));
    CHECK(xavier_std(shape, tanh_gain) == golden.scalar("init.xavier_normal_std." + name));
  }
  CHECK(compute_fans({64, 32, 3, 3}).fan_in == 288);
  CHECK(compute_fans({64, 32, 3, 3}).fan_out == 576);
}

TEMPLATE_TEST_CASE("initializers draw the documented distributions", "[nn][init]", float, double) {
  using T = TestType;
  Generator gen(2024);
  const Shape conv{128, 64, 3, 3};  // 73728 samples; fan_in 576, fan_out 1152

  auto t = Tensor<T>::empty({300, 400});
  auto m = moments(uniform_(t, gen, -2.0, 3.0));
  CHECK(m.min >= -2.0);
  CHECK(m.max <= 3.0);
  check_moments(m, 0.5, 5.0 / std::sqrt(12.0), kUniformKurtosis);

  m = moments(normal_(t, gen, 1.5, 0.3));
  check_moments(m, 1.5, 0.3, kNormalKurtosis);

  auto w = Tensor<T>::empty(conv);
  const double he_bound = std::sqrt(6.0 / 576);  // relu: gain sqrt(2), bound sqrt(3) * gain / sqrt(fan_in)
  m = moments(kaiming_uniform_(w, gen, 0.0, FanMode::FanIn, Nonlinearity::Relu));
  CHECK(m.max <= he_bound * (1 + 1e-7));
  CHECK(m.min >= -he_bound * (1 + 1e-7));
  CHECK(m.max >= 0.999 * he_bound);
  check_moments(m, 0.0, he_bound / std::sqrt(3.0), kUniformKurtosis);

  m = moments(kaiming_normal_(w, gen, 0.0, FanMode::FanOut, Nonlinearity::Relu));
  check_moments(m, 0.0, std::sqrt(2.0 / 1152), kNormalKurtosis);

  // PyTorch's nn.Conv2d/Linear default: kaiming_uniform_(a = sqrt(5)) -> bound 1 / sqrt(fan_in).
  m = moments(kaiming_uniform_(w, gen, std::sqrt(5.0)));
  CHECK(m.max <= (1 / std::sqrt(576.0)) * (1 + 1e-7));
  check_moments(m, 0.0, 1 / std::sqrt(576.0) / std::sqrt(3.0), kUniformKurtosis);

  const double glorot = std::sqrt(2.0 / (576 + 1152));
  m = moments(xavier_uniform_(w, gen));
  CHECK(m.max <= std::sqrt(3.0) * glorot * (1 + 1e-7));
  check_moments(m, 0.0, glorot, kUniformKurtosis);
  m = moments(xavier_normal_(w, gen, 2.0));
  check_moments(m, 0.0, 2 * glorot, kNormalKurtosis);

  CHECK(moments(constant_(w, 0.25)).min == T(0.25));
  CHECK(moments(zeros_(w)).max == 0);
  m = moments(ones_(w));
  CHECK((m.min == 1 && m.max == 1));
  CHECK(normal_(Tensor<T>::empty({3}), gen, 4.0, 0.0).to_vector() == std::vector<T>(3, T(4)));
}

TEST_CASE("initializers write in place through views, reproducibly, without autograd", "[nn][init]") {
  auto w = Tensor<double>::zeros({4, 6}).requires_grad();
  Generator a(7), b(7);
  auto view = w.detach().narrow(1, 2, 3).transpose(0, 1);  // [3, 4], strided
  auto same = normal_(view, a);
  CHECK(same.data() == view.data());
  CHECK(w.at({0, 0}) == 0.0);
  CHECK(w.at({3, 5}) == 0.0);
  CHECK(w.at({1, 3}) != 0.0);
  CHECK(w.requires_grad_flag());
  CHECK(w.is_leaf());
  // The same seed gives the same values in the same (row-major view) order.
  auto fresh = Tensor<double>::empty({3, 4});
  normal_(fresh, b);
  CHECK(fresh.to_vector() == view.to_vector());
}

TEST_CASE("init bad input raises gkd::Error naming the initializer and the values", "[errors][nn][init]") {
  Generator gen(1);
  using Catch::Contains;
  REQUIRE_THROWS_WITH(kaiming_uniform_(Tensor<float>::empty({5}), gen), Contains("init") && Contains("fewer than 2 dims") && Contains("[5]"));
  REQUIRE_THROWS_WITH(xavier_normal_(Tensor<float>::empty({}), gen), Contains("fewer than 2 dims"));
  REQUIRE_THROWS_WITH(kaiming_normal_(Tensor<float>::empty({4, 0, 3, 3}), gen),
                      Contains("kaiming") && Contains("fan_in") && Contains("[4, 0, 3, 3]") && Contains("is 0"));
  REQUIRE_THROWS_WITH(kaiming_uniform_(Tensor<float>::empty({0, 3}), gen, 0.0, FanMode::FanOut),
                      Contains("kaiming") && Contains("fan_out") && Contains("[0, 3]"));
  REQUIRE_THROWS_WITH(xavier_uniform_(Tensor<float>::empty({0, 3}), gen),
                      Contains("xavier") && Contains("fan_in 3") && Contains("fan_out 0"));
  REQUIRE_THROWS_WITH(uniform_(Tensor<float>::empty({2}), gen, 1.0, -1.0), Contains("uniform_") && Contains("[1, -1)"));
  REQUIRE_THROWS_WITH(normal_(Tensor<float>::empty({2}), gen, 0.0, -1.0), Contains("normal_") && Contains("std -1"));
  REQUIRE_THROWS_WITH(constant_(Tensor<float>(), 1.0), Contains("constant_") && Contains("undefined"));
  REQUIRE_THROWS_WITH(calculate_gain(Nonlinearity::LeakyRelu, std::nan("")), Contains("calculate_gain") && Contains("nan"));
}
