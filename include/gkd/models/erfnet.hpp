// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `ERFNet` (method.md §10.3; the official `networks/erfnet.py` with a 1-channel downsampler): encoder
/// of downsampler blocks and factorised residual "non-bottleneck-1d" blocks (3x1 / 1x3 convs, dilated
/// in the second pair), decoder of transposed-conv upsamplers. BatchNorm eps 1e-3. 2.06 M parameters at
/// width 1 (including the encoder's `output_conv`, instantiated but unused as in the official forward).
/// Returns (f_enc after encoder layer 0, f_dec after decoder layer 2, logits).
/// @code
///   gkd::Generator gen(0);
///   gkd::models::ERFNet<float> net({.width = 0.25}, gen);
///   auto out = net.forward(x);   // out.logits [N, 2, H, W]; H and W divisible by 8
/// @endcode
#include <variant>
#include <vector>

#include "gkd/models/blocks.hpp"

namespace gkd::models {

namespace erfnet {

/// concat(3x3/s2 conv to out - in channels, 2x2 max pool) -> BN -> ReLU.
template <Real T>
struct DownsamplerBlock {
  using value_type = T;
  nn::Conv2d<T> conv;
  nn::BatchNorm2d<T> bn;
  DownsamplerBlock(std::int64_t in, std::int64_t out, Generator& gen)
      : conv({.in = in, .out = checked(in, out), .kernel = 3, .stride = 2, .padding = 1}, gen),
        bn({.channels = out, .eps = 1e-3}) {}
  static std::int64_t checked(std::int64_t in, std::int64_t out) {
    GKD_CHECK(out > in, "DownsamplerBlock", "out channels " << out << " must exceed in channels " << in);
    return out - in;
  }
  std::int64_t in_channels() const { return conv.spec.in; }
  std::int64_t out_channels() const { return bn.spec.channels; }
  Tensor<T> forward(const Tensor<T>& x) { return bn.forward(concat({conv.forward(x), max_pool2d(x, 2)}, 1), FusedActivation::ReLU); }
  template <class V>
  void visit(V& v) {
    v.child("conv", conv);
    v.child("bn", bn);
  }
};

/// relu(3x1) -> 1x3 -> BN -> relu -> dilated 3x1 -> relu -> dilated 1x3 -> BN -> dropout, + input, relu.
template <Real T>
struct NonBottleneck1d {
  using value_type = T;
  nn::Conv2d<T> conv3x1_1, conv1x3_1;
  nn::BatchNorm2d<T> bn1;
  nn::Conv2d<T> conv3x1_2, conv1x3_2;
  nn::BatchNorm2d<T> bn2;
  nn::Dropout2d<T> dropout;
  NonBottleneck1d(std::int64_t c, double p, std::int64_t d, Generator& gen)
      : conv3x1_1({.in = c, .out = c, .kernel = {3, 1}, .padding = {1, 0}}, gen),
        conv1x3_1({.in = c, .out = c, .kernel = {1, 3}, .padding = {0, 1}}, gen),
        bn1({.channels = c, .eps = 1e-3}),
        conv3x1_2({.in = c, .out = c, .kernel = {3, 1}, .padding = {d, 0}, .dilation = {d, 1}}, gen),
        conv1x3_2({.in = c, .out = c, .kernel = {1, 3}, .padding = {0, d}, .dilation = {1, d}}, gen),
        bn2({.channels = c, .eps = 1e-3}),
        dropout({.p = p}, gen) {}
  std::int64_t in_channels() const { return conv3x1_1.spec.in; }
  std::int64_t out_channels() const { return in_channels(); }
  Tensor<T> forward(const Tensor<T>& x) {
    Tensor<T> h = bn1.forward(conv1x3_1.forward(relu(conv3x1_1.forward(x))), FusedActivation::ReLU);
    h = bn2.forward(conv1x3_2.forward(relu(conv3x1_2.forward(h))));
    return relu(add(dropout.forward(h), x));
  }
  template <class V>
  void visit(V& v) {
    v.child("conv3x1_1", conv3x1_1);
    v.child("conv1x3_1", conv1x3_1);
    v.child("bn1", bn1);
    v.child("conv3x1_2", conv3x1_2);
    v.child("conv1x3_2", conv1x3_2);
    v.child("bn2", bn2);
    v.child("dropout", dropout);
  }
};

/// 3x3/s2 transposed conv (output padding 1) -> BN -> ReLU.
template <Real T>
struct UpsamplerBlock {
  using value_type = T;
  nn::ConvTranspose2d<T> conv;
  nn::BatchNorm2d<T> bn;
  UpsamplerBlock(std::int64_t in, std::int64_t out, Generator& gen)
      : conv({.in = in, .out = out, .kernel = 3, .stride = 2, .padding = 1, .output_padding = 1}, gen),
        bn({.channels = out, .eps = 1e-3}) {}
  std::int64_t in_channels() const { return conv.spec.in; }
  std::int64_t out_channels() const { return conv.spec.out; }
  Tensor<T> forward(const Tensor<T>& x) { return bn.forward(conv.forward(x), FusedActivation::ReLU); }
  template <class V>
  void visit(V& v) {
    v.child("conv", conv);
    v.child("bn", bn);
  }
};

/// One entry of a layer list whose blocks differ in type (the official `nn.ModuleList`).
template <Real T, class... B>
struct Layer {
  using value_type = T;
  std::variant<B...> block;
  Tensor<T> forward(const Tensor<T>& x) {
    return std::visit([&](auto& b) { return b.forward(x); }, block);
  }
  template <class V>
  void visit(V& v) {
    std::visit([&](auto& b) { b.visit(v); }, block);
  }
};

}  // namespace erfnet

struct ERFNetSpec {
  double width = 1.0;
  std::int64_t in_channels = 1;
  std::int64_t classes = 2;
};

template <Real T>
struct ERFNet {
  using value_type = T;
  using EncoderLayer = erfnet::Layer<T, erfnet::DownsamplerBlock<T>, erfnet::NonBottleneck1d<T>>;
  using DecoderLayer = erfnet::Layer<T, erfnet::UpsamplerBlock<T>, erfnet::NonBottleneck1d<T>>;
  struct Output {
    Tensor<T> f_enc, f_dec, logits;
  };
  struct Encoder {
    using value_type = T;
    erfnet::DownsamplerBlock<T> initial_block;
    std::vector<EncoderLayer> layers;
    nn::Conv2d<T> output_conv;
    template <class V>
    void visit(V& v) {
      v.child("initial_block", initial_block);
      for (std::size_t i = 0; i < layers.size(); ++i) v.child("layers." + std::to_string(i), layers[i]);
      v.child("output_conv", output_conv);
    }
  };
  struct Decoder {
    using value_type = T;
    std::vector<DecoderLayer> layers;
    nn::ConvTranspose2d<T> output_conv;
    template <class V>
    void visit(V& v) {
      for (std::size_t i = 0; i < layers.size(); ++i) v.child("layers." + std::to_string(i), layers[i]);
      v.child("output_conv", output_conv);
    }
  };

  Encoder encoder;
  Decoder decoder;

  ERFNet(const ERFNetSpec& s, Generator& gen) : encoder(make_encoder(s, gen)), decoder(make_decoder(s, gen)) {}

  Output forward(const Tensor<T>& x) {
    Output o;
    Tensor<T> h = encoder.initial_block.forward(x);
    for (std::size_t i = 0; i < encoder.layers.size(); ++i) {
      h = encoder.layers[i].forward(h);
      if (i == 0) o.f_enc = h;
    }
    for (std::size_t i = 0; i < decoder.layers.size(); ++i) {
      h = decoder.layers[i].forward(h);
      if (i == 2) o.f_dec = h;
    }
    o.logits = decoder.output_conv.forward(h);
    return o;
  }
  template <class V>
  void visit(V& v) {
    v.child("encoder", encoder);
    v.child("decoder", decoder);
  }

 private:
  static std::int64_t c(const ERFNetSpec& s, std::int64_t channels) { return nn::scaled(channels, s.width); }
  static Encoder make_encoder(const ERFNetSpec& s, Generator& gen) {
    using erfnet::DownsamplerBlock, erfnet::NonBottleneck1d;
    erfnet::DownsamplerBlock<T> first(s.in_channels, c(s, 16), gen);
    std::vector<EncoderLayer> layers;
    layers.push_back({DownsamplerBlock<T>(c(s, 16), c(s, 64), gen)});
    for (int i = 0; i < 5; ++i) layers.push_back({NonBottleneck1d<T>(c(s, 64), 0.1, 1, gen)});
    layers.push_back({DownsamplerBlock<T>(c(s, 64), c(s, 128), gen)});
    for (int i = 0; i < 2; ++i)
      for (std::int64_t d : {2, 4, 8, 16}) layers.push_back({NonBottleneck1d<T>(c(s, 128), 0.1, d, gen)});
    nn::Conv2d<T> out({.in = c(s, 128), .out = s.classes, .kernel = 1}, gen);
    return Encoder{std::move(first), std::move(layers), std::move(out)};
  }
  static Decoder make_decoder(const ERFNetSpec& s, Generator& gen) {
    using erfnet::UpsamplerBlock, erfnet::NonBottleneck1d;
    std::vector<DecoderLayer> layers;
    layers.push_back({UpsamplerBlock<T>(c(s, 128), c(s, 64), gen)});
    for (int i = 0; i < 2; ++i) layers.push_back({NonBottleneck1d<T>(c(s, 64), 0, 1, gen)});
    layers.push_back({UpsamplerBlock<T>(c(s, 64), c(s, 16), gen)});
    for (int i = 0; i < 2; ++i) layers.push_back({NonBottleneck1d<T>(c(s, 16), 0, 1, gen)});
    nn::ConvTranspose2d<T> out({.in = c(s, 16), .out = s.classes, .kernel = 2, .stride = 2}, gen);
    return Decoder{std::move(layers), std::move(out)};
  }
};

}  // namespace gkd::models
