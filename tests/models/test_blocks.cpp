// SPDX-License-Identifier: Apache-2.0
// Float64 gradchecks of the composed blocks of the GKD networks (training-mode batch norm, dropout
// off): SKConv, SKBlock, StripPooling and StripPooling2, the inverted residual, the ENet bottlenecks,
// ERFNet's non-bottleneck-1d, and the MSAN vector bottleneck; plus their construction errors.
#include "gkd/models/models.hpp"
#include "support/check.hpp"

using namespace gkd;
using namespace gkd::models;

namespace {
template <nn::Module M>
void prepare(M& m) {
  nn::train(m);
  nn::set_dropout_training(m, false);
}
}  // namespace

TEST_CASE("teacher blocks pass a float64 gradcheck", "[models][gradcheck]") {
  Generator gen(21);
  const auto x = test::random<double>({2, 4, 4, 4}, 1);
  SECTION("SKConv") {
    SKConv<double> m(4, gen);
    prepare(m);
    test::require_gradcheck([&](const auto& in) { return m.forward(in[0]); }, {x});
  }
  SECTION("SKBlock with projection") {
    SKBlock<double> m(4, 2, true, gen);
    prepare(m);
    test::require_gradcheck([&](const auto& in) { return m.forward(in[0]); }, {x});
  }
  SECTION("StripPooling and StripPooling2") {
    StripPooling<double, false> a(4, 3, 6, gen);
    prepare(a);
    test::require_gradcheck([&](const auto& in) { return a.forward(in[0]); }, {x});
    StripPooling<double, true> b(4, 3, 6, gen);
    prepare(b);
    test::require_gradcheck([&](const auto& in) { return b.forward(in[0]); }, {x});
  }
}

TEST_CASE("student blocks pass a float64 gradcheck", "[models][gradcheck]") {
  Generator gen(22);
  SECTION("inverted residual, with and without expansion") {
    InvertedResidual<double> a(3, 3, 1, 2, gen);
    prepare(a);
    REQUIRE(a.residual);
    test::require_gradcheck([&](const auto& in) { return a.forward(in[0]); }, {test::random<double>({2, 3, 4, 4}, 2)});
    InvertedResidual<double> b(3, 4, 2, 1, gen);
    prepare(b);
    test::require_gradcheck([&](const auto& in) { return b.forward(in[0]); }, {test::random<double>({2, 3, 4, 4}, 3)});
  }
  SECTION("ENet regular, asymmetric, downsampling and upsampling bottlenecks") {
    const auto x = test::random<double>({2, 4, 4, 4}, 4);
    enet::RegularBottleneck<double, nn::PReLU<double>> r({.channels = 4, .padding = 2, .dilation = 2}, gen);
    prepare(r);
    test::require_gradcheck([&](const auto& in) { return r.forward(in[0]); }, {x});
    enet::RegularBottleneck<double, nn::ReLU<double>> a({.channels = 4, .kernel = 5, .padding = 2, .asymmetric = true}, gen);
    prepare(a);
    test::require_gradcheck([&](const auto& in) { return a.forward(in[0]); }, {x});
    enet::DownsamplingBottleneck<double, nn::PReLU<double>> d(4, 8, 0.1, gen);
    enet::UpsamplingBottleneck<double, nn::ReLU<double>> u(8, 4, 0.1, gen);
    prepare(d);
    prepare(u);
    test::require_gradcheck([&](const auto& in) {
      auto down = d.forward(in[0]);
      return u.forward(down.y, down.indices);
    }, {x});
  }
  SECTION("ERFNet non-bottleneck-1d (dilated) and the downsampler") {
    erfnet::NonBottleneck1d<double> m(3, 0.1, 2, gen);
    prepare(m);
    test::require_gradcheck([&](const auto& in) { return m.forward(in[0]); }, {test::random<double>({2, 3, 5, 5}, 5)});
    erfnet::DownsamplerBlock<double> dn(3, 5, gen);
    prepare(dn);
    test::require_gradcheck([&](const auto& in) { return dn.forward(in[0]); }, {test::random<double>({2, 3, 4, 4}, 6)});
  }
  SECTION("MSAN vector bottleneck") {
    VectorBottleneck<double> m({.spatial = 6, .hidden = 4}, gen);
    test::require_gradcheck([&](const auto& in) { return m.forward(in[0]); }, {test::random<double>({2, 3, 6}, 7)});
  }
}

TEST_CASE("blocks reject impossible channel counts at construction", "[models]") {
  Generator gen(0);
  REQUIRE_THROWS_WITH(SKConv<float>(1, gen), Catch::Contains("needs at least 2 channels"));
  REQUIRE_THROWS_WITH(SKBlock<float>(4, 8, false, gen), Catch::Contains("identity shortcut needs equal channels"));
  REQUIRE_THROWS_WITH((StripPooling<float, true>(5, 3, 6, gen)), Catch::Contains("even channel count"));
  REQUIRE_THROWS_WITH((enet::RegularBottleneck<float, nn::ReLU<float>>({.channels = 2}, gen)), Catch::Contains("at least 4 channels"));
  REQUIRE_THROWS_WITH(erfnet::DownsamplerBlock<float>(16, 16, gen), Catch::Contains("must exceed in channels"));
}

TEST_CASE("P-SAE regularisation runs the official Mlp path", "[models]") {
  Generator gen(5);
  LatentNet<float> psae({.width = 1.0 / 16}, gen);
  nn::eval(psae);
  nn::freeze(psae);
  VectorBottleneck<float> mlp({.spatial = 16}, gen);
  const auto r = psae_regularise(psae, mlp, test::random<float>({1, 1, 32, 32}, 3));
  REQUIRE(r.middle.shape() == Shape{1, 32, 4, 4});
  REQUIRE(r.re_middle.shape() == r.middle.shape());
  REQUIRE(r.re_output.shape() == Shape{1, 1, 32, 32});
  sum(r.re_output).backward();
  REQUIRE(mlp.downfc1.weight.grad().defined());
  for (auto& p : nn::named_parameters(psae)) REQUIRE(!p.tensor.grad().defined());
}
