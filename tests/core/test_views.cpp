// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("views share storage and index correctly", "[views]") {
  auto t = Tensor<float>::from({2, 3}, {0, 1, 2, 3, 4, 5});
  auto tt = t.transpose(0, 1);
  REQUIRE(tt.shape() == Shape{3, 2});
  REQUIRE(!tt.is_contiguous());
  REQUIRE(tt.data() == t.data());
  REQUIRE(tt.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  REQUIRE(tt.contiguous().is_contiguous());
  REQUIRE(t.reshape({3, -1}).shape() == Shape{3, 2});
  REQUIRE(t.slice(1, 0, 3, 2).to_vector() == std::vector<float>{0, 2, 3, 5});
  REQUIRE(t.narrow(1, 1, 2).to_vector() == std::vector<float>{1, 2, 4, 5});
  REQUIRE(t.select(0, -1).to_vector() == std::vector<float>{3, 4, 5});
  REQUIRE(t.unsqueeze(0).shape() == Shape{1, 2, 3});
  REQUIRE(t.unsqueeze(2).squeeze(2).shape() == Shape{2, 3});
  REQUIRE(t.select(1, 0).unsqueeze(1).expand({2, 4}).to_vector() == std::vector<float>{0, 0, 0, 0, 3, 3, 3, 3});
  REQUIRE(Tensor<float>::zeros({2, 3, 4, 5}).flatten(1).shape() == Shape{2, 60});
  REQUIRE(Tensor<float>::zeros({2, 3, 4, 5}).flatten(1, 2).shape() == Shape{2, 12, 5});
  auto c = t.clone();
  c.at({0, 0}) = 100;
  REQUIRE(t.at({0, 0}) == 0);
  REQUIRE(tt.reshape({6}).to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});  // copies when needed
}

TEST_CASE("views gradcheck", "[gradcheck][views]") {
  const auto x = random({2, 3, 4}, 31);
  require_gradcheck([](const In& v) { return v[0].reshape({4, -1}); }, {x});
  require_gradcheck([](const In& v) { return v[0].permute({2, 0, 1}); }, {x});
  require_gradcheck([](const In& v) { return v[0].transpose(0, 2).reshape({-1}); }, {x});
  require_gradcheck([](const In& v) { return v[0].slice(2, 1, 4, 2); }, {x});
  require_gradcheck([](const In& v) { return v[0].narrow(1, 1, 2).select(0, 1); }, {x});
  require_gradcheck([](const In& v) { return v[0].unsqueeze(1).expand({2, 5, 3, 4}); }, {x});
  require_gradcheck([](const In& v) { return v[0].narrow(0, 0, 1).squeeze(0); }, {x});
  require_gradcheck([](const In& v) { return v[0].clone() * v[0].contiguous(); }, {x});
  require_gradcheck([](const In& v) { return v[0].flatten(0, 1); }, {x});
}

TEST_CASE("view errors name the op and shapes", "[views][errors]") {
  const auto t = Tensor<float>::zeros({2, 3});
  REQUIRE_THROWS_WITH(t.reshape({4, 2}), Catch::Contains("reshape") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 2]"));
  REQUIRE_THROWS_WITH(t.reshape({-1, -1}), Catch::Contains("more than one -1"));
  REQUIRE_THROWS_WITH(t.permute({0, 0}), Catch::Contains("appears twice"));
  REQUIRE_THROWS_WITH(t.permute({0}), Catch::Contains("permute"));
  REQUIRE_THROWS_WITH(t.slice(1, 2, 1), Catch::Contains("slice"));
  REQUIRE_THROWS_WITH(t.slice(1, 0, 3, 0), Catch::Contains("step"));
  REQUIRE_THROWS_WITH(t.select(0, 2), Catch::Contains("select"));
  REQUIRE_THROWS_WITH(t.expand({4, 3, 2}), Catch::Contains("expand") && Catch::Contains("[4, 3, 2]"));
  REQUIRE_THROWS_WITH(t.squeeze(0), Catch::Contains("squeeze") && Catch::Contains("is not 1"));
  REQUIRE_THROWS_WITH(t.unsqueeze(4), Catch::Contains("unsqueeze"));
  REQUIRE_THROWS_WITH(t.flatten(1, 0), Catch::Contains("flatten"));
  REQUIRE_THROWS_WITH(t.transpose(0, 3), Catch::Contains("transpose"));
}
