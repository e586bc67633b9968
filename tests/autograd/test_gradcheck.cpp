// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"

using namespace gkd;
using In = std::vector<Tensor<double>>;

TEST_CASE("gradcheck detects a wrong backward and reports the worst element", "[autograd]") {
  // square with a deliberately wrong derivative (x instead of 2x)
  auto bad_square = [](const In& v) {
    const Tensor<double> x = v[0];
    Tensor<double> y = detail::map(x, [](double t) { return t * t; });
    return record("clone", y, {x}, [x = x.detach()](const Tensor<double>& g) { return std::vector<Tensor<double>>{g * x}; });
  };
  const auto x = gkd::test::random({5}, 1);
  const GradcheckResult r = gradcheck(bad_square, {x});
  REQUIRE(!r.ok);
  REQUIRE(r.message.find("FAILED") != std::string::npos);
  REQUIRE(r.worst_element >= 0);
  REQUIRE(r.ops == std::vector<std::string>{"clone"});
  REQUIRE(gradcheck([](const In& v) { return v[0] * v[0]; }, {x}).ok);
}

TEST_CASE("gradcheck nudges inputs off kinks instead of failing", "[autograd]") {
  const auto x = Tensor<double>::from({4}, {0.0, 1.0, -1.0, 0.0});  // relu and abs are kinked at 0
  const GradcheckResult r = gradcheck([](const In& v) { return relu(v[0]) + abs(v[0]); }, {x});
  REQUIRE(r.ok);
  REQUIRE(r.kink_retries >= 1);
  REQUIRE(r.message.find("nudged") != std::string::npos);
}

TEST_CASE("gradcheck rejects a function without differentiable output", "[autograd][errors]") {
  REQUIRE_THROWS_WITH(gradcheck([](const In& v) { return v[0].detach(); }, {Tensor<double>::ones({2})}),
                      Catch::Contains("gradcheck"));
}
