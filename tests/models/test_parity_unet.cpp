// SPDX-License-Identifier: Apache-2.0
// UNet (width 1/16, 2x1x32x32) against PyTorch: forward, taps, backward (input and every
// parameter gradient), running statistics and eval mode, in float64 and float32.
#include "gkd/models/unet.hpp"
#include "models/parity.hpp"

using namespace gkd;
using namespace gkd::models;

namespace {
template <Real T>
void check() {
  Generator gen(1);
  UNet<T> net({.width = 1.0 / 16}, gen);
  test::require_parity(net, "unet", {2, 1, 32, 32}, [](auto& n, const Tensor<T>& x) { return n.forward(x); },
                       [](auto& o) { return std::vector<std::pair<std::string, Tensor<T>>>{{"c4", o.c4}, {"c7", o.c7}}; });
}
}  // namespace

TEST_CASE("UNet matches PyTorch in float64", "[models][parity]") { check<double>(); }
TEST_CASE("UNet matches PyTorch in float32", "[models][parity]") { check<float>(); }
