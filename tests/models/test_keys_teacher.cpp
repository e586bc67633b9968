// SPDX-License-Identifier: Apache-2.0
// The teacher UnetSKA2 at width 1 (instantiated for counting only, never run): the parameter count equals
// the exact count of the PyTorch definition (tools/golden/models.py) and method.md's rounded figure, and
// the state_dict keys (names, order, shapes) equal PyTorch's.
#include "gkd/models/models.hpp"
#include "models/keys.hpp"

using namespace gkd;
using namespace gkd::models;
using namespace gkd::test;

TEST_CASE("UnetSKA2: 38,292,295 = 38.29 M", "[models]") {
  Generator gen(0);
  UnetSKA2<float> net({}, gen);
  require_keys(net, model_keys().at("unet_ska2"));
  REQUIRE(nn::parameter_count(net) == 38292295);
  require_millions(nn::parameter_count(net), 38.29);
}

TEST_CASE("UnetSKA2 initialises conv weights Xavier-uniform", "[models]") {
  Generator gen(0);
  UnetSKA2<double> net({.width = 0.25}, gen);
  const auto& w = net.conv4.conv.template get<0>().conv3.template get<0>().weight;  // [128, 128, 1, 1]
  const double bound = std::sqrt(6.0 / (128 + 128));
  double lo = 0, hi = 0;
  for (double v : w.to_vector()) lo = std::min(lo, v), hi = std::max(hi, v);
  REQUIRE(hi <= bound);
  REQUIRE(lo >= -bound);
  REQUIRE(hi > 0.9 * bound);
}

TEST_CASE("width multipliers scale channels with a minimum of one", "[models]") {
  REQUIRE(nn::scaled(64, 1.0) == 64);
  REQUIRE(nn::scaled(64, 1.0 / 16) == 4);
  REQUIRE(nn::scaled(24, 1.0 / 8) == 3);
  REQUIRE(nn::scaled(16, 1.0 / 64) == 1);
  REQUIRE_THROWS_WITH(nn::scaled(16, 0.0), Catch::Contains("width multiplier must be positive"));
}
