// SPDX-License-Identifier: Apache-2.0
// The module framework: PyTorch state_dict naming and order without registration, train/eval,
// freeze, parameter counting, run-time channel checks, and float64 gradchecks of every layer type and
// of the composition templates.
#include "gkd/nn/nn.hpp"
#include "support/check.hpp"

using namespace gkd;
using namespace gkd::nn;

namespace {

template <Real T>
struct Block {  // own parameter, then children: PyTorch puts own tensors first
  using value_type = T;
  Tensor<T> scale = Tensor<T>::ones({1}).requires_grad();
  Sequential<Conv2d<T>, BatchNorm2d<T>, ReLU<T>> body;
  Linear<T> fc;
  Block(Generator& gen)
      : body(Conv2d<T>({.in = 2, .out = 3, .kernel = 3, .padding = 1, .bias = false}, gen), BatchNorm2d<T>({.channels = 3}), {}),
        fc({.in = 4, .out = 2}, gen) {}
  template <class V>
  void visit(V& v) {
    v.child("body", body);
    v.parameter("scale", scale);
    v.child("fc", fc);
  }
};

std::vector<std::string> names(const NamedTensors<double>& ts) {
  std::vector<std::string> out;
  for (auto& t : ts) out.push_back(t.name);
  return out;
}

}  // namespace

TEST_CASE("state_dict names and orders tensors as PyTorch", "[nn]") {
  Generator gen(0);
  Block<double> b(gen);
  REQUIRE(names(state_dict(b)) == std::vector<std::string>{"scale", "body.0.weight", "body.1.weight", "body.1.bias",
                                                            "body.1.running_mean", "body.1.running_var",
                                                            "body.1.num_batches_tracked", "fc.weight", "fc.bias"});
  REQUIRE(names(named_parameters(b)) ==
          std::vector<std::string>{"scale", "body.0.weight", "body.1.weight", "body.1.bias", "fc.weight", "fc.bias"});
  REQUIRE(names(named_buffers(b)) ==
          std::vector<std::string>{"body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked"});
  REQUIRE(parameter_count(b) == 1 + 2 * 3 * 9 + 3 + 3 + 8 + 2);
  // The handles share storage: writing through the state dict changes the module.
  state_dict(b)[0].tensor.data()[0] = 5;
  REQUIRE(b.scale.item() == 5);
}

TEST_CASE("train, eval and freeze reach every submodule", "[nn]") {
  Generator gen(0);
  Sequential<Conv2d<double>, BatchNorm2d<double>, Dropout2d<double>> s(
      Conv2d<double>({.in = 1, .out = 2, .kernel = 1}, gen), BatchNorm2d<double>({.channels = 2}), Dropout2d<double>({.p = 0.5}, gen));
  eval(s);
  REQUIRE(!s.get<1>().training);
  REQUIRE(!s.get<2>().training);
  const auto x = test::random<double>({2, 1, 3, 3}, 1);
  test::require_close(s.forward(x), s.forward(x), 0.0, "eval is deterministic");
  train(s);
  REQUIRE(s.get<1>().training);
  set_dropout_training(s, false);
  REQUIRE(s.get<1>().training);
  REQUIRE(!s.get<2>().training);
  s.forward(x);
  REQUIRE(s.get<1>().num_batches_tracked.item() == 1);
  freeze(s);
  for (auto& p : named_parameters(s)) REQUIRE(!p.tensor.requires_grad_flag());
  REQUIRE(!s.forward(x).requires_grad_flag());
  unfreeze(s);
  for (auto& p : named_parameters(s)) REQUIRE(p.tensor.requires_grad_flag());
}

TEST_CASE("to(kCPU) keeps a host module, and a GPU without gkd::cuda is refused and changes nothing", "[nn]") {
  Generator gen(0);
  Block<double> b(gen);
  freeze(b.fc);
  const auto before = state_dict(b);
  to(b, kCPU);
  const auto after = state_dict(b);
  for (std::size_t i = 0; i < before.size(); ++i) REQUIRE(after[i].tensor.data() == before[i].tensor.data());
  REQUIRE(!b.fc.weight.requires_grad_flag());
  REQUIRE(b.scale.requires_grad_flag());
#if !defined(GKD_HAS_CUDA)
  REQUIRE_THROWS_WITH(to(b, cuda_device()), Catch::Contains("not linked with gkd::cuda"));
  for (std::size_t i = 0; i < before.size(); ++i) REQUIRE(state_dict(b)[i].tensor.device() == kCPU);
#endif
}

TEST_CASE("channel mismatches are reported when a chain is built", "[nn]") {
  Generator gen(0);
  using Chain = Sequential<Conv2d<float>, BatchNorm2d<float>, ReLU<float>, Conv2d<float>>;
  REQUIRE_THROWS_WITH(Chain(Conv2d<float>({.in = 1, .out = 8, .kernel = 3}, gen), BatchNorm2d<float>({.channels = 4}), {},
                            Conv2d<float>({.in = 4, .out = 2, .kernel = 1}, gen)),
                      Catch::Contains("layer 1 expects 4 input channels but layer 0 produces 8"));
  REQUIRE_THROWS_WITH(Chain(Conv2d<float>({.in = 1, .out = 8, .kernel = 3}, gen), BatchNorm2d<float>({.channels = 8}), {},
                            Conv2d<float>({.in = 4, .out = 2, .kernel = 1}, gen)),
                      Catch::Contains("layer 3 expects 4 input channels but layer 1 produces 8"));
  Conv2d<float> conv({.in = 3, .out = 2, .kernel = 1}, gen);
  REQUIRE_THROWS_WITH(conv.forward(Tensor<float>::zeros({1, 2, 4, 4})), Catch::Contains("expected input [N, 3, H, W]"));
  REQUIRE_THROWS_WITH(Conv2d<float>({.in = 3, .out = 4, .kernel = 1, .groups = 2}, gen), Catch::Contains("divisible by groups"));
}

TEST_CASE("layers match their functional ops and PyTorch's parameter shapes", "[nn]") {
  Generator gen(0);
  Conv2d<double> dw({.in = 4, .out = 4, .kernel = 3, .padding = 2, .dilation = 2, .groups = 4, .bias = false}, gen);
  REQUIRE(dw.weight.shape() == Shape{4, 1, 3, 3});
  REQUIRE(!dw.bias.defined());
  ConvTranspose2d<double> up({.in = 4, .out = 6, .kernel = 3, .stride = 2, .padding = 1, .groups = 2}, gen);
  REQUIRE(up.weight.shape() == Shape{4, 3, 3, 3});
  const auto x = test::random<double>({1, 4, 5, 5}, 2);
  REQUIRE(up.forward_to(x, {10, 10}).shape() == Shape{1, 6, 10, 10});
  REQUIRE(up.forward(x).shape() == Shape{1, 6, 9, 9});
  // PyTorch's default init bound 1/sqrt(fan_in) for conv weights (kaiming_uniform, a = sqrt(5)).
  Conv2d<double> big({.in = 16, .out = 64, .kernel = 3}, gen);
  for (double v : big.weight.to_vector()) REQUIRE(std::abs(v) <= 1.0 / std::sqrt(144.0));
}

TEST_CASE("every layer type passes a float64 gradcheck", "[nn][gradcheck]") {
  Generator gen(7);
  const auto x = test::random<double>({2, 4, 5, 5}, 11);
  SECTION("Conv2d (grouped, dilated) in input, weight and bias") {
    Conv2d<double> m({.in = 4, .out = 6, .kernel = 3, .stride = 2, .padding = 2, .dilation = 2, .groups = 2}, gen);
    test::require_gradcheck([&](const auto& in) { m.weight = in[1], m.bias = in[2]; return m.forward(in[0]); },
                            {x, m.weight, m.bias});
  }
  SECTION("ConvTranspose2d with a target size") {
    ConvTranspose2d<double> m({.in = 4, .out = 2, .kernel = 3, .stride = 2, .padding = 1}, gen);
    test::require_gradcheck([&](const auto& in) { m.weight = in[1], m.bias = in[2]; return m.forward_to(in[0], {10, 10}); },
                            {x, m.weight, m.bias});
  }
  SECTION("BatchNorm2d in training and evaluation mode") {
    BatchNorm2d<double> m({.channels = 4, .eps = 1e-3});
    test::require_gradcheck([&](const auto& in) { m.weight = in[1], m.bias = in[2]; return m.forward(in[0]); },
                            {x, test::random<double>({4}, 3), test::random<double>({4}, 4)});
    m.training = false;
    test::require_gradcheck([&](const auto& in) { return m.forward(in[0]); }, {x});
  }
  SECTION("Linear, GeluMlp, activations and PReLU") {
    Linear<double> fc({.in = 5, .out = 3}, gen);
    test::require_gradcheck([&](const auto& in) { fc.weight = in[1]; return fc.forward(in[0]); }, {x, fc.weight});
    GeluMlp<double> mlp({.in = 5, .hidden = 4, .out = 2}, gen);
    test::require_gradcheck([&](const auto& in) { return mlp.forward(in[0]); }, {x});
    PReLU<double> prelu;
    test::require_gradcheck([&](const auto& in) { prelu.weight = in[1]; return prelu.forward(in[0]); },
                            {x, prelu.weight});
    test::require_gradcheck([](const auto& in) { return ReLU6<double>{}.forward(mul(in[0], 4.0)); }, {x});
    test::require_gradcheck([](const auto& in) { return GELU<double>{}.forward(in[0]); }, {x});
    test::require_gradcheck([](const auto& in) { return Sigmoid<double>{}.forward(in[0]); }, {x});
  }
  SECTION("pooling, upsampling and dropout modules") {
    test::require_gradcheck([](const auto& in) { return MaxPool2d<double>{{.kernel = 3, .stride = 2, .padding = 1}}.forward(in[0]); }, {x});
    test::require_gradcheck([](const auto& in) { return AvgPool2d<double>{{.kernel = 2}}.forward(in[0]); }, {x});
    test::require_gradcheck([](const auto& in) { return AdaptiveAvgPool2d<double>{{3, 6}}.forward(in[0]); }, {x});
    test::require_gradcheck([](const auto& in) { return Upsample<double>{{.scale = 2.0, .bilinear = true}}.forward(in[0]); }, {x});
    test::require_gradcheck([](const auto& in) { return Upsample<double>{{.size = Size2{7, 3}}}.forward(in[0]); }, {x});
    Dropout2d<double> drop({.p = 0.5}, gen);
    const std::uint64_t seed = gen.next();
    test::require_gradcheck([&](const auto& in) { drop.gen.seed(seed); return drop.forward(in[0]); }, {x});
    Dropout<double> drop1({.p = 0.3}, gen);
    test::require_gradcheck([&](const auto& in) { drop1.gen.seed(seed); return drop1.forward(in[0]); }, {x});
  }
  SECTION("max_unpool2d scatters to the pooled positions") {
    const auto xs = test::random<double>({2, 3, 4, 6}, 5);
    const PoolIndices where = max_pool2d_indices(xs, 2);
    const auto restored = max_unpool2d(max_pool2d(xs, 2), where);
    REQUIRE(restored.shape() == xs.shape());
    REQUIRE(sum(restored).item() == Approx(sum(max_pool2d(xs, 2)).item()));
    test::require_gradcheck([&](const auto& in) { return max_unpool2d(in[0], where); }, {test::random<double>({2, 3, 2, 3}, 6)});
    REQUIRE_THROWS_WITH(max_unpool2d(Tensor<double>::zeros({2, 3, 2, 2}), where), Catch::Contains("does not match the pooled shape"));
  }
}

TEST_CASE("Sequential applies a ReLU or ReLU6 after a BatchNorm2d inside the batch norm", "[nn]") {
  Generator gen(4);
  const auto x = test::random<float>({2, 3, 5, 5}, 31, 2.0f), gout = test::random<float>({2, 4, 5, 5}, 32);
  using Chain = Sequential<Conv2d<float>, BatchNorm2d<float>, ReLU6<float>, Identity<float>>;
  auto make = [&] {
    Generator g(7);
    Chain c(Conv2d<float>({.in = 3, .out = 4, .kernel = 3, .padding = 1}, g), BatchNorm2d<float>({.channels = 4}), {}, {});
    gkd::detail::copy_into(c.get<1>().weight, Tensor<float>::full({4}, 5.0f));  // outputs past 6
    return c;
  };
  Chain fused = make(), separate = make();
  const auto xf = x.clone().requires_grad(), xs = x.clone().requires_grad();
  const auto yf = fused.forward(xf);
  const auto ys = Identity<float>{}.forward(relu6(separate.get<1>().forward(separate.get<0>().forward(xs))));
  REQUIRE(yf.meta()->grad_fn->op == "batch_norm2d_relu6");
  REQUIRE(yf.to_vector() == ys.to_vector());
  yf.backward(gout);
  ys.backward(gout);
  REQUIRE(xf.grad().to_vector() == xs.grad().to_vector());
  REQUIRE(fused.get<0>().weight.grad().to_vector() == separate.get<0>().weight.grad().to_vector());
  REQUIRE(fused.get<1>().weight.grad().to_vector() == separate.get<1>().weight.grad().to_vector());
  REQUIRE(fused.get<1>().running_var.to_vector() == separate.get<1>().running_var.to_vector());
  const auto yv = yf.to_vector();
  REQUIRE(std::count(yv.begin(), yv.end(), 6.0f) > 0);
  REQUIRE(std::count(yv.begin(), yv.end(), 0.0f) > 0);

  // Only an activation that names its fused form right after a layer that takes one is absorbed.
  BatchNorm2d<float> bn({.channels = 3});
  ReLU<float> relu_layer;
  GELU<float> gelu_layer;
  REQUIRE(forward_then(bn, relu_layer, x).meta()->grad_fn->op == "batch_norm2d_relu");
  REQUIRE(forward_then(bn, gelu_layer, x).meta()->grad_fn->op == "gelu");
  Sequential<Conv2d<float>, ReLU<float>> conv_relu(Conv2d<float>({.in = 3, .out = 2, .kernel = 1}, gen), {});
  REQUIRE(conv_relu.forward(x).meta()->grad_fn->op == "relu");
  Sequential<BatchNorm2d<float>, ReLU<float>> bn_relu(BatchNorm2d<float>({.channels = 3}), {});
  eval(bn_relu);
  REQUIRE(bn_relu.forward(x).meta()->grad_fn->op == "batch_norm2d_relu");
}

TEST_CASE("composition templates pass a float64 gradcheck", "[nn][gradcheck]") {
  Generator gen(9);
  const auto x = test::random<double>({2, 3, 4, 4}, 12);
  auto conv = [&](std::int64_t in, std::int64_t out) { return Conv2d<double>({.in = in, .out = out, .kernel = 3, .padding = 1}, gen); };
  SECTION("Sequential") {
    Sequential<Conv2d<double>, BatchNorm2d<double>, ReLU<double>> s(conv(3, 4), BatchNorm2d<double>({.channels = 4}), {});
    test::require_gradcheck([&](const auto& in) { return s.forward(in[0]); }, {x});
  }
  SECTION("Residual with identity and projection shortcuts") {
    Residual<Sequential<Conv2d<double>, ReLU<double>>> r{Sequential<Conv2d<double>, ReLU<double>>(conv(3, 3), {})};
    REQUIRE(names(state_dict(r)) == std::vector<std::string>{"body.0.weight", "body.0.bias"});
    test::require_gradcheck([&](const auto& in) { return r.forward(in[0]); }, {x});
    Residual<Conv2d<double>, Conv2d<double>> p{conv(3, 5), Conv2d<double>({.in = 3, .out = 5, .kernel = 1}, gen)};
    REQUIRE(names(state_dict(p)) == std::vector<std::string>{"body.weight", "body.bias", "shortcut.weight", "shortcut.bias"});
    test::require_gradcheck([&](const auto& in) { return p.forward(in[0]); }, {x});
  }
  SECTION("SkipConcat (a U-Net level) and Repeat") {
    using Level = Sequential<MaxPool2d<double>, Conv2d<double>, Upsample<double>>;
    SkipConcat<Level> u{Level(MaxPool2d<double>{{.kernel = 2}}, conv(3, 2), Upsample<double>{{.scale = 2.0}})};
    REQUIRE(u.forward(x).shape() == Shape{2, 5, 4, 4});
    test::require_gradcheck([&](const auto& in) { return u.forward(in[0]); }, {x});
    Repeat<Conv2d<double>> rep;
    for (int i = 0; i < 3; ++i) rep.blocks.push_back(conv(3, 3));
    REQUIRE(names(named_parameters(rep)).back() == "2.bias");
    test::require_gradcheck([&](const auto& in) { return rep.forward(in[0]); }, {x});
  }
}
