// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The GKD student `MobileNetV2UNet` (method.md §10.2): a MobileNetV2 backbone with a 1-channel stem
/// (keys `backbone.features.N...`), a decoder of transposed convs (k4, s2, p1) and inverted residuals
/// over the concatenated skips, 1x1 convs 16 -> 3 -> classes, bilinear x2. 4.68 M parameters at width 1
/// (the official class also builds a 1.28 M ImageNet classifier it never calls; it is left out here).
///
/// `forward(x, bottleneck)` is the official `forward(x, De)`: the encoder runs on x for the skips, and
/// when a bottleneck is supplied it replaces x5 as the input of `dconv1` (DICD's cross path).
/// @code
///   gkd::Generator gen(0);
///   gkd::models::MobileNetV2UNet<float> student({.width = 0.25}, gen);
///   auto out = student.forward(x);               // out.logits [N, 2, H, W], out.x5 [N, 320, H/32, W/32]
///   auto cross = student.forward(x, swapped);    // decoder fed with `swapped` instead of x5
/// @endcode
#include <optional>
#include <vector>

#include "gkd/models/blocks.hpp"

namespace gkd::models {

/// MobileNetV2's inverted residual: [1x1 expand + BN + ReLU6] (when t != 1), 3x3 depthwise (stride s)
/// + BN + ReLU6, 1x1 project + BN; identity added when s == 1 and in == out. Children "conv.0" ... as
/// the official `nn.Sequential` (indices 0..7, or 0..4 without the expansion).
template <Real T>
struct InvertedResidual {
  using value_type = T;
  std::optional<nn::Conv2d<T>> expand;
  std::optional<nn::BatchNorm2d<T>> expand_bn;
  nn::Conv2d<T> depthwise;
  nn::BatchNorm2d<T> depthwise_bn;
  nn::Conv2d<T> project;
  nn::BatchNorm2d<T> project_bn;
  bool residual;

  InvertedResidual(std::int64_t in, std::int64_t out, std::int64_t stride, std::int64_t t, Generator& gen)
      : depthwise({.in = in * t, .out = in * t, .kernel = 3, .stride = stride, .padding = 1, .groups = in * t,
                   .bias = false},
                  (make_expand(in, t, gen), gen)),
        depthwise_bn({.channels = in * t}),
        project({.in = in * t, .out = out, .kernel = 1, .bias = false}, gen),
        project_bn({.channels = out}),
        residual(stride == 1 && in == out) {}
  std::int64_t in_channels() const { return expand ? expand->spec.in : depthwise.spec.in; }
  std::int64_t out_channels() const { return project.spec.out; }
  Tensor<T> forward(const Tensor<T>& x) {
    Tensor<T> h = x;
    constexpr auto act = FusedActivation::ReLU6;
    if (expand) h = expand_bn->forward(expand->forward(h), act);
    h = project_bn.forward(project.forward(depthwise_bn.forward(depthwise.forward(h), act)));
    return residual ? add(x, h) : h;
  }
  template <class V>
  void visit(V& v) {
    const int o = expand ? 3 : 0;
    if (expand) v.child("conv.0", *expand), v.child("conv.1", *expand_bn);
    v.child("conv." + std::to_string(o), depthwise);
    v.child("conv." + std::to_string(o + 1), depthwise_bn);
    v.child("conv." + std::to_string(o + 3), project);
    v.child("conv." + std::to_string(o + 4), project_bn);
  }

 private:
  int make_expand(std::int64_t in, std::int64_t t, Generator& gen) {
    GKD_CHECK(in > 0 && t > 0, "InvertedResidual", "channels " << in << " and expansion " << t << " must be positive");
    if (t != 1) {
      expand.emplace(nn::Conv2dSpec{.in = in, .out = in * t, .kernel = 1, .bias = false}, gen);
      expand_bn.emplace(nn::BatchNorm2dSpec{.channels = in * t});
    }
    return 0;
  }
};

struct MobileNetV2UNetSpec {
  double width = 1.0;
  std::int64_t in_channels = 1;
  std::int64_t classes = 2;
};

template <Real T>
struct MobileNetV2UNet {
  using value_type = T;
  struct Output {
    Tensor<T> logits, x5, up2;  ///< logits, the bottleneck (H/32) and the official decode()'s up2 tap
  };
  struct Skips {
    Tensor<T> x1, x2, x3, x4, x5;
  };

  ConvBnAct<T, nn::ReLU6<T>> stem;                  // backbone.features.0
  std::vector<InvertedResidual<T>> blocks;          // backbone.features.1 .. 17
  ConvBnAct<T, nn::ReLU6<T>> head;                  // backbone.features.18
  nn::ConvTranspose2d<T> dconv1;
  InvertedResidual<T> invres1;
  nn::ConvTranspose2d<T> dconv2;
  InvertedResidual<T> invres2;
  nn::ConvTranspose2d<T> dconv3;
  InvertedResidual<T> invres3;
  nn::ConvTranspose2d<T> dconv4;
  InvertedResidual<T> invres4;
  nn::Conv2d<T> conv_last, conv_score;

  MobileNetV2UNet(const MobileNetV2UNetSpec& s, Generator& gen)
      : stem(conv_bn_act<T, nn::ReLU6<T>>(
            {.in = s.in_channels, .out = nn::scaled(32, s.width), .kernel = 3, .stride = 2, .padding = 1, .bias = false},
            gen)),
        head(make_backbone(s, gen)),
        dconv1(up(s, 1280, 96, gen)), invres1(2 * c(s, 96), c(s, 96), 1, 6, gen),
        dconv2(up(s, 96, 32, gen)), invres2(2 * c(s, 32), c(s, 32), 1, 6, gen),
        dconv3(up(s, 32, 24, gen)), invres3(2 * c(s, 24), c(s, 24), 1, 6, gen),
        dconv4(up(s, 24, 16, gen)), invres4(2 * c(s, 16), c(s, 16), 1, 6, gen),
        conv_last({.in = c(s, 16), .out = 3, .kernel = 1}, gen),
        conv_score({.in = 3, .out = s.classes, .kernel = 1}, gen) {
    init(gen);
  }

  /// The backbone taps x1 (H/2) .. x5 (H/32).
  Skips encode(const Tensor<T>& x) {
    Skips k;
    Tensor<T> h = stem.forward(x);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      h = blocks[i].forward(h);
      if (i == 0) k.x1 = h;
      if (i == 2) k.x2 = h;
      if (i == 5) k.x3 = h;
      if (i == 12) k.x4 = h;
    }
    k.x5 = head.forward(h);
    return k;
  }
  /// The decoder from `bottleneck` (x5's shape) with the skips x1..x4 of `k`.
  Output decode(const Tensor<T>& bottleneck, const Skips& k) {
    Output o;
    o.x5 = k.x5;
    const Tensor<T> up1 = invres1.forward(concat({k.x4, dconv1.forward(bottleneck)}, 1));
    o.up2 = invres2.forward(concat({k.x3, dconv2.forward(up1)}, 1));
    const Tensor<T> up3 = invres3.forward(concat({k.x2, dconv3.forward(o.up2)}, 1));
    const Tensor<T> up4 = invres4.forward(concat({k.x1, dconv4.forward(up3)}, 1));
    o.logits = upsample_bilinear2d(conv_score.forward(conv_last.forward(up4)), Scale2(2.0), false);
    return o;
  }
  Output forward(const Tensor<T>& x, const Tensor<T>& bottleneck = Tensor<T>()) {
    const Skips k = encode(x);
    if (bottleneck.defined())
      GKD_CHECK(bottleneck.shape() == k.x5.shape(), "MobileNetV2UNet",
                "the supplied bottleneck " << to_string(bottleneck.shape()) << " must have x5's shape "
                                           << to_string(k.x5.shape()));
    return decode(bottleneck.defined() ? bottleneck : k.x5, k);
  }
  template <class V>
  void visit(V& v) {
    v.child("backbone.features.0", stem);
    for (std::size_t i = 0; i < blocks.size(); ++i) v.child("backbone.features." + std::to_string(i + 1), blocks[i]);
    v.child("backbone.features." + std::to_string(blocks.size() + 1), head);
    v.child("dconv1", dconv1);
    v.child("invres1", invres1);
    v.child("dconv2", dconv2);
    v.child("invres2", invres2);
    v.child("dconv3", dconv3);
    v.child("invres3", invres3);
    v.child("dconv4", dconv4);
    v.child("invres4", invres4);
    v.child("conv_last", conv_last);
    v.child("conv_score", conv_score);
  }

 private:
  static std::int64_t c(const MobileNetV2UNetSpec& s, std::int64_t channels) { return nn::scaled(channels, s.width); }
  static nn::ConvTranspose2d<T> up(const MobileNetV2UNetSpec& s, std::int64_t in, std::int64_t out, Generator& gen) {
    return nn::ConvTranspose2d<T>({.in = c(s, in), .out = c(s, out), .kernel = 4, .stride = 2, .padding = 1}, gen);
  }
  ConvBnAct<T, nn::ReLU6<T>> make_backbone(const MobileNetV2UNetSpec& s, Generator& gen) {
    struct Stage {
      std::int64_t t, c, n, s;
    };
    constexpr Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    std::int64_t in = c(s, 32);
    for (const Stage& st : stages)
      for (std::int64_t i = 0; i < st.n; ++i) {
        blocks.emplace_back(in, c(s, st.c), i == 0 ? st.s : 1, st.t, gen);
        in = c(s, st.c);
      }
    return conv_bn_act<T, nn::ReLU6<T>>({.in = in, .out = c(s, 1280), .kernel = 1, .bias = false}, gen);
  }
  /// The official init: conv and transposed-conv weights ~ N(0, sqrt(2 / (k*k*out))), biases 0.
  void init(Generator& gen) {
    nn::for_each_module(*this, [&](auto& m) {
      using M = std::remove_cvref_t<decltype(m)>;
      if constexpr (is_conv2d<M> || is_conv_transpose2d<M>) {
        const double n = static_cast<double>(m.spec.kernel.h * m.spec.kernel.w * m.spec.out);
        nn::init::normal_(m.weight, gen, 0.0, std::sqrt(2.0 / n));
        if (m.bias.defined()) nn::init::zeros_(m.bias);
      }
    });
  }
};

}  // namespace gkd::models
