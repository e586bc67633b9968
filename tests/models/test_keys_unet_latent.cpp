// SPDX-License-Identifier: Apache-2.0
// The plain UNet and the P-SAE LatentNet at width 1 (instantiated for counting only, never run): the
// parameter count equals the exact count of the PyTorch definition (tools/golden/models.py) and method.md's
// rounded figure, and the state_dict keys (names, order, shapes) equal PyTorch's.
#include "gkd/models/models.hpp"
#include "models/keys.hpp"

using namespace gkd;
using namespace gkd::models;
using namespace gkd::test;

TEST_CASE("UNet: 31,042,434 = 31.04 M", "[models]") {
  Generator gen(0);
  UNet<float> net({}, gen);
  require_keys(net, model_keys().at("unet"));
  REQUIRE(nn::parameter_count(net) == 31042434);
  require_millions(nn::parameter_count(net), 31.04);
}

TEST_CASE("LatentNet: 26,828,353 = 26.83 M used", "[models]") {
  Generator gen(0);
  LatentNet<float> net({}, gen);
  require_keys(net, model_keys().at("latent_net"));
  REQUIRE(nn::parameter_count(net) == 26828353);
  require_millions(nn::parameter_count(net), 26.83);
}
