// SPDX-License-Identifier: Apache-2.0
// MobileNetV2UNet (width 1/8, 2x1x64x64) against PyTorch: forward, backward, running statistics, eval
// mode, and forward(x, bottleneck) — the decoder fed with a supplied x5 and the real skips.
#include "gkd/models/mobilenet_v2_unet.hpp"
#include "models/parity.hpp"

using namespace gkd;
using namespace gkd::models;

namespace {
template <Real T>
using Taps = std::vector<std::pair<std::string, Tensor<T>>>;

template <Real T>
void check() {
  Generator gen(1);
  MobileNetV2UNet<T> net({.width = 1.0 / 8}, gen);
  test::require_parity(net, "mobilenet_v2_unet", {2, 1, 64, 64}, [](auto& n, const Tensor<T>& x) { return n.forward(x); },
                       [](auto& o) { return Taps<T>{{"x5", o.x5}, {"up2", o.up2}}; });
}
template <Real T>
void check_swap() {
  Generator gen(1);
  MobileNetV2UNet<T> net({.width = 1.0 / 8}, gen);
  Tensor<T> bottleneck = test::formula_tensor<T>("bottleneck", {2, 160, 2, 2}).requires_grad();
  test::require_parity(net, "mobilenet_v2_unet.swap", {2, 1, 64, 64},
                       [&](auto& n, const Tensor<T>& x) { return n.forward(x, bottleneck); },
                       [&](auto&) { return Taps<T>{{"bottleneck_grad", bottleneck.grad()}}; });
}
}  // namespace

TEST_CASE("MobileNetV2UNet matches PyTorch in float64", "[models][parity]") { check<double>(); }
TEST_CASE("MobileNetV2UNet matches PyTorch in float32", "[models][parity]") { check<float>(); }
TEST_CASE("MobileNetV2UNet decodes a supplied bottleneck as PyTorch, float64", "[models][parity]") { check_swap<double>(); }
TEST_CASE("MobileNetV2UNet decodes a supplied bottleneck as PyTorch, float32", "[models][parity]") { check_swap<float>(); }

TEST_CASE("MobileNetV2UNet rejects a bottleneck of the wrong shape", "[models]") {
  Generator gen(1);
  MobileNetV2UNet<float> net({.width = 1.0 / 8}, gen);
  REQUIRE_THROWS_WITH(net.forward(Tensor<float>::zeros({2, 1, 64, 64}), Tensor<float>::zeros({2, 16, 2, 2})),
                      Catch::Contains("must have x5's shape"));
}
