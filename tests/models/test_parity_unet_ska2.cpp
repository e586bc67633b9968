// SPDX-License-Identifier: Apache-2.0
// UnetSKA2 (width 1/16, 2x1x32x32) against PyTorch: forward, backward, running statistics, eval mode,
// and the decoder run from a supplied bottleneck with the real skips (DICD's cross path).
#include "gkd/models/unet_ska2.hpp"
#include "models/parity.hpp"

using namespace gkd;
using namespace gkd::models;

namespace {
template <Real T>
using Taps = std::vector<std::pair<std::string, Tensor<T>>>;

template <Real T>
void check() {
  Generator gen(1);
  UnetSKA2<T> net({.width = 1.0 / 16}, gen);
  test::require_parity(net, "unet_ska2", {2, 1, 32, 32}, [](auto& n, const Tensor<T>& x) { return n.forward(x); },
                       [](auto& o) { return Taps<T>{{"c3", o.c3}, {"up7", o.up7}, {"c4", o.c4}}; });
}
template <Real T>
void check_swap() {
  Generator gen(1);
  UnetSKA2<T> net({.width = 1.0 / 16}, gen);
  Tensor<T> bottleneck = test::formula_tensor<T>("bottleneck", {2, 32, 4, 4}).requires_grad();
  test::require_parity(net, "unet_ska2.swap", {2, 1, 32, 32},
                       [&](auto& n, const Tensor<T>& x) { return n.decode(bottleneck, n.encode(x)); },
                       [&](auto&) { return Taps<T>{{"bottleneck_grad", bottleneck.grad()}}; });
}
}  // namespace

TEST_CASE("UnetSKA2 matches PyTorch in float64", "[models][parity]") { check<double>(); }
TEST_CASE("UnetSKA2 matches PyTorch in float32", "[models][parity]") { check<float>(); }
TEST_CASE("UnetSKA2 decodes a supplied bottleneck as PyTorch, float64", "[models][parity]") { check_swap<double>(); }
TEST_CASE("UnetSKA2 decodes a supplied bottleneck as PyTorch, float32", "[models][parity]") { check_swap<float>(); }
