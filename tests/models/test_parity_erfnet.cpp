// SPDX-License-Identifier: Apache-2.0
// ERFNet (width 1/4, 2x1x64x64) against PyTorch: forward, taps, backward (input and every
// parameter gradient), running statistics and eval mode, in float64 and float32.
#include "gkd/models/erfnet.hpp"
#include "models/parity.hpp"

using namespace gkd;
using namespace gkd::models;

namespace {
template <Real T>
void check() {
  Generator gen(1);
  ERFNet<T> net({.width = 1.0 / 4}, gen);
  test::require_parity(net, "erfnet", {2, 1, 64, 64}, [](auto& n, const Tensor<T>& x) { return n.forward(x); },
                       [](auto& o) { return std::vector<std::pair<std::string, Tensor<T>>>{{"f_enc", o.f_enc}, {"f_dec", o.f_dec}}; });
}
}  // namespace

TEST_CASE("ERFNet matches PyTorch in float64", "[models][parity]") { check<double>(); }
TEST_CASE("ERFNet matches PyTorch in float32", "[models][parity]") { check<float>(); }
