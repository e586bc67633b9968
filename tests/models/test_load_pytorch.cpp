// SPDX-License-Identifier: Apache-2.0
// A state dict exported by PyTorch (safetensors' own writer; PyTorch's random init, moved running
// statistics, int64 num_batches_tracked) loads strictly into gkd's ENet by state_dict key, and the
// eval-mode logits equal PyTorch's.
#include "gkd/io/safetensors.hpp"
#include "gkd/models/enet.hpp"
#include "models/parity.hpp"

using namespace gkd;

TEST_CASE("a PyTorch-exported ENet state dict loads strictly and reproduces PyTorch's output", "[models][io]") {
  Generator gen(99);
  models::ENet<float> net({.width = 1.0 / 4}, gen);
  auto state = nn::state_dict(net);
  const io::LoadReport report =
      io::load_into(std::string(GKD_GOLDEN_DIR) + "/models_enet.safetensors", state, {.strict = true});
  INFO(report.str());
  REQUIRE(report.ok());
  REQUIRE(net.initial_block.batch_norm.num_batches_tracked.item() == 2);
  nn::eval(net);
  NoGrad guard;
  const Tensor<float> x = test::formula_tensor<float>("input", {2, 1, 64, 64}, 4.0);
  test::require_checksum(test::Golden("models"), "enet_export.float32.eval_logits", net.forward(x).logits, 1e-4);
}

TEST_CASE("loading reports a state dict that does not fit the network", "[models][io]") {
  Generator gen(99);
  models::ENet<float> net({.width = 1.0 / 2}, gen);  // another width: every conv is mis-shaped
  auto state = nn::state_dict(net);
  REQUIRE_THROWS_WITH(io::load_into(std::string(GKD_GOLDEN_DIR) + "/models_enet.safetensors", state, {.strict = true}),
                      Catch::Contains("initial_block.main_branch.weight"));
}
