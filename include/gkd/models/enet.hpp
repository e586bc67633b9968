// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `ENet` (method.md §10.3; the official `networks/enet.py`, the standard PyTorch ENet with a 1-channel
/// initial block): PReLU encoder, ReLU decoder, max-unpooling with the encoder's pooling indices.
/// 0.35 M parameters at width 1. Returns (x1 after stage 1, x2 after stage 4, logits), as the official.
/// @code
///   gkd::Generator gen(0);
///   gkd::models::ENet<float> net({.width = 0.25}, gen);
///   auto out = net.forward(x);   // out.logits [N, 2, H, W]; H and W divisible by 8
/// @endcode
#include <optional>
#include <vector>

#include "gkd/models/blocks.hpp"

namespace gkd::models {

namespace enet {

template <Real T>
struct InitialBlock {
  using value_type = T;
  nn::Conv2d<T> main_branch;
  nn::BatchNorm2d<T> batch_norm;
  nn::PReLU<T> out_activation;
  InitialBlock(std::int64_t in, std::int64_t out, Generator& gen)
      : main_branch({.in = in, .out = out - in, .kernel = 3, .stride = 2, .padding = 1, .bias = false}, gen),
        batch_norm({.channels = out}) {}
  Tensor<T> forward(const Tensor<T>& x) {
    const Tensor<T> y = concat({main_branch.forward(x), max_pool2d(x, 3, 2, 1)}, 1);
    return out_activation.forward(batch_norm.forward(y));
  }
  template <class V>
  void visit(V& v) {
    v.child("main_branch", main_branch);
    v.child("batch_norm", batch_norm);
    v.child("out_activation", out_activation);
  }
};

struct RegularSpec {
  std::int64_t channels = 0;
  std::int64_t kernel = 3, padding = 1, dilation = 1;
  bool asymmetric = false;
  double dropout = 0;
};

inline std::int64_t internal_channels(std::int64_t channels, const char* block) {
  GKD_CHECK(channels >= 4, block, "needs at least 4 channels (internal ratio 4), got " << channels);
  return channels / 4;
}

/// Shortcut + (1x1 projection, regular/dilated/asymmetric conv, 1x1 expansion, spatial dropout).
template <Real T, class Act>
struct RegularBottleneck {
  using value_type = T;
  ConvBnAct<T, Act> ext_conv1;
  std::optional<ConvBnAct<T, Act>> regular;
  std::optional<nn::Sequential<nn::Conv2d<T>, nn::BatchNorm2d<T>, Act, nn::Conv2d<T>, nn::BatchNorm2d<T>, Act>> asym;
  ConvBnAct<T, Act> ext_conv3;
  nn::Dropout2d<T> ext_regul;
  Act out_activation{};

  RegularBottleneck(const RegularSpec& s, Generator& gen)
      : ext_conv1(conv_bn_act<T, Act>(
            {.in = s.channels, .out = internal_channels(s.channels, "RegularBottleneck"), .kernel = 1, .bias = false},
            gen)),
        ext_conv3(conv_bn_act<T, Act>({.in = s.channels / 4, .out = s.channels, .kernel = 1, .bias = false},
                                      (make_middle(s, gen), gen))),
        ext_regul({.p = s.dropout}, gen) {}
  Tensor<T> forward(const Tensor<T>& x) {
    Tensor<T> e = ext_conv1.forward(x);
    e = regular ? regular->forward(e) : asym->forward(e);
    e = ext_regul.forward(ext_conv3.forward(e));
    return out_activation.forward(add(x, e));
  }
  template <class V>
  void visit(V& v) {
    v.child("ext_conv1", ext_conv1);
    if (regular) v.child("ext_conv2", *regular);
    if (asym) v.child("ext_conv2", *asym);
    v.child("ext_conv3", ext_conv3);
    v.child("ext_regul", ext_regul);
    v.child("out_activation", out_activation);
  }

 private:
  int make_middle(const RegularSpec& s, Generator& gen) {
    const std::int64_t c = s.channels / 4;
    if (s.asymmetric) {
      nn::Conv2d<T> a({.in = c, .out = c, .kernel = {s.kernel, 1}, .padding = {s.padding, 0}, .dilation = s.dilation,
                       .bias = false},
                      gen);
      nn::Conv2d<T> b({.in = c, .out = c, .kernel = {1, s.kernel}, .padding = {0, s.padding}, .dilation = s.dilation,
                       .bias = false},
                      gen);
      asym.emplace(std::move(a), nn::BatchNorm2d<T>({.channels = c}), Act{}, std::move(b),
                   nn::BatchNorm2d<T>({.channels = c}), Act{});
    } else {
      regular.emplace(conv_bn_act<T, Act>(
          {.in = c, .out = c, .kernel = s.kernel, .padding = s.padding, .dilation = s.dilation, .bias = false}, gen));
    }
    return 0;
  }
};

/// Max pooling (indices kept) + zero channel padding on the main branch; 2x2/s2 projection, 3x3 conv,
/// 1x1 expansion on the other.
template <Real T, class Act>
struct DownsamplingBottleneck {
  using value_type = T;
  struct Output {
    Tensor<T> y;
    nn::PoolIndices indices;
  };
  ConvBnAct<T, Act> ext_conv1, ext_conv2, ext_conv3;
  nn::Dropout2d<T> ext_regul;
  Act out_activation{};
  DownsamplingBottleneck(std::int64_t in, std::int64_t out, double dropout, Generator& gen)
      : ext_conv1(conv_bn_act<T, Act>(
            {.in = in, .out = internal_channels(in, "DownsamplingBottleneck"), .kernel = 2, .stride = 2, .bias = false},
            gen)),
        ext_conv2(conv_bn_act<T, Act>({.in = in / 4, .out = in / 4, .kernel = 3, .padding = 1, .bias = false}, gen)),
        ext_conv3(conv_bn_act<T, Act>({.in = in / 4, .out = out, .kernel = 1, .bias = false}, gen)),
        ext_regul({.p = dropout}, gen) {
    GKD_CHECK(out >= in, "DownsamplingBottleneck", "out channels " << out << " must be at least in channels " << in);
  }
  Output forward(const Tensor<T>& x) {
    Output o;
    o.indices = nn::max_pool2d_indices(x, 2);
    Tensor<T> main = max_pool2d(x, 2);
    const Tensor<T> e = ext_regul.forward(ext_conv3.forward(ext_conv2.forward(ext_conv1.forward(x))));
    const Shape& es = e.shape();
    if (es[1] > main.shape()[1])
      main = concat({main, Tensor<T>::zeros({es[0], es[1] - main.shape()[1], es[2], es[3]}, main.device())}, 1);
    o.y = out_activation.forward(add(main, e));
    return o;
  }
  template <class V>
  void visit(V& v) {
    v.child("ext_conv1", ext_conv1);
    v.child("ext_conv2", ext_conv2);
    v.child("ext_conv3", ext_conv3);
    v.child("ext_regul", ext_regul);
    v.child("out_activation", out_activation);
  }
};

/// 1x1 conv + BN + max-unpooling on the main branch; 1x1 projection, 2x2/s2 transposed conv, 1x1
/// expansion on the other.
template <Real T, class Act>
struct UpsamplingBottleneck {
  using value_type = T;
  ConvBn<T> main_conv1;
  ConvBnAct<T, Act> ext_conv1;
  nn::ConvTranspose2d<T> ext_tconv1;
  nn::BatchNorm2d<T> ext_tconv1_bnorm;
  Act ext_tconv1_activation{};
  ConvBn<T> ext_conv2;
  nn::Dropout2d<T> ext_regul;
  Act out_activation{};
  UpsamplingBottleneck(std::int64_t in, std::int64_t out, double dropout, Generator& gen)
      : main_conv1(conv_bn<T>({.in = in, .out = out, .kernel = 1, .bias = false}, gen)),
        ext_conv1(conv_bn_act<T, Act>(
            {.in = in, .out = internal_channels(in, "UpsamplingBottleneck"), .kernel = 1, .bias = false}, gen)),
        ext_tconv1({.in = in / 4, .out = in / 4, .kernel = 2, .stride = 2, .bias = false}, gen),
        ext_tconv1_bnorm({.channels = in / 4}),
        ext_conv2(conv_bn<T>({.in = in / 4, .out = out, .kernel = 1, .bias = false}, gen)),
        ext_regul({.p = dropout}, gen) {}
  Tensor<T> forward(const Tensor<T>& x, const nn::PoolIndices& indices) {
    const Tensor<T> main = nn::max_unpool2d(main_conv1.forward(x), indices);
    const Size2 size{indices.input_shape[2], indices.input_shape[3]};
    Tensor<T> e = nn::forward_then(ext_tconv1_bnorm, ext_tconv1_activation,
                                   ext_tconv1.forward_to(ext_conv1.forward(x), size));
    e = ext_regul.forward(ext_conv2.forward(e));
    return out_activation.forward(add(main, e));
  }
  template <class V>
  void visit(V& v) {
    v.child("main_conv1", main_conv1);
    v.child("ext_conv1", ext_conv1);
    v.child("ext_tconv1", ext_tconv1);
    v.child("ext_tconv1_bnorm", ext_tconv1_bnorm);
    v.child("ext_tconv1_activation", ext_tconv1_activation);
    v.child("ext_conv2", ext_conv2);
    v.child("ext_regul", ext_regul);
    v.child("out_activation", out_activation);
  }
};

}  // namespace enet

struct ENetSpec {
  double width = 1.0;
  std::int64_t in_channels = 1;
  std::int64_t classes = 2;
};

template <Real T>
struct ENet {
  using value_type = T;
  using Enc = enet::RegularBottleneck<T, nn::PReLU<T>>;
  using Dec = enet::RegularBottleneck<T, nn::ReLU<T>>;
  struct Output {
    Tensor<T> x1, x2, logits;
  };

  enet::InitialBlock<T> initial_block;
  enet::DownsamplingBottleneck<T, nn::PReLU<T>> downsample1_0;
  std::vector<Enc> stage1;  // regular1_1 .. regular1_4
  enet::DownsamplingBottleneck<T, nn::PReLU<T>> downsample2_0;
  std::vector<Enc> stage23;  // regular2_1 .. dilated3_7
  enet::UpsamplingBottleneck<T, nn::ReLU<T>> upsample4_0;
  std::vector<Dec> stage4;  // regular4_1, regular4_2
  enet::UpsamplingBottleneck<T, nn::ReLU<T>> upsample5_0;
  std::vector<Dec> stage5;  // regular5_1
  nn::ConvTranspose2d<T> transposed_conv;

  static constexpr const char* kStage23Names[] = {"regular2_1",   "dilated2_2",   "asymmetric2_3", "dilated2_4",
                                                  "regular2_5",   "dilated2_6",   "asymmetric2_7", "dilated2_8",
                                                  "regular3_0",   "dilated3_1",   "asymmetric3_2", "dilated3_3",
                                                  "regular3_4",   "dilated3_5",   "asymmetric3_6", "dilated3_7"};

  ENet(const ENetSpec& s, Generator& gen)
      : initial_block(s.in_channels, c(s, 16), gen),
        downsample1_0(c(s, 16), c(s, 64), 0.01, (gen)),
        downsample2_0(c(s, 64), c(s, 128), 0.1, (make_stage1(s, gen), gen)),
        upsample4_0(c(s, 128), c(s, 64), 0.1, (make_stage23(s, gen), gen)),
        upsample5_0(c(s, 64), c(s, 16), 0.1, (make_stage4(s, gen), gen)),
        transposed_conv({.in = c(s, 16), .out = s.classes, .kernel = 3, .stride = 2, .padding = 1, .bias = false},
                        (make_stage5(s, gen), gen)) {}

  Output forward(const Tensor<T>& x) {
    Output o;
    Tensor<T> h = initial_block.forward(x);
    auto d1 = downsample1_0.forward(h);
    h = d1.y;
    for (auto& b : stage1) h = b.forward(h);
    o.x1 = h;
    auto d2 = downsample2_0.forward(h);
    h = d2.y;
    for (auto& b : stage23) h = b.forward(h);
    h = upsample4_0.forward(h, d2.indices);
    for (auto& b : stage4) h = b.forward(h);
    o.x2 = h;
    h = upsample5_0.forward(h, d1.indices);
    for (auto& b : stage5) h = b.forward(h);
    o.logits = transposed_conv.forward_to(h, Size2{x.shape()[2], x.shape()[3]});
    return o;
  }
  template <class V>
  void visit(V& v) {
    v.child("initial_block", initial_block);
    v.child("downsample1_0", downsample1_0);
    for (std::size_t i = 0; i < stage1.size(); ++i) v.child("regular1_" + std::to_string(i + 1), stage1[i]);
    v.child("downsample2_0", downsample2_0);
    for (std::size_t i = 0; i < stage23.size(); ++i) v.child(kStage23Names[i], stage23[i]);
    v.child("upsample4_0", upsample4_0);
    for (std::size_t i = 0; i < stage4.size(); ++i) v.child("regular4_" + std::to_string(i + 1), stage4[i]);
    v.child("upsample5_0", upsample5_0);
    v.child("regular5_1", stage5[0]);
    v.child("transposed_conv", transposed_conv);
  }

 private:
  static std::int64_t c(const ENetSpec& s, std::int64_t channels) { return nn::scaled(channels, s.width); }
  int make_stage1(const ENetSpec& s, Generator& gen) {
    for (int i = 0; i < 4; ++i) stage1.emplace_back(enet::RegularSpec{.channels = c(s, 64), .dropout = 0.01}, gen);
    return 0;
  }
  int make_stage23(const ENetSpec& s, Generator& gen) {
    const std::int64_t ch = c(s, 128);
    for (int stage = 0; stage < 2; ++stage) {
      stage23.emplace_back(enet::RegularSpec{.channels = ch, .dropout = 0.1}, gen);
      stage23.emplace_back(enet::RegularSpec{.channels = ch, .padding = 2, .dilation = 2, .dropout = 0.1}, gen);
      stage23.emplace_back(enet::RegularSpec{.channels = ch, .kernel = 5, .padding = 2, .asymmetric = true, .dropout = 0.1}, gen);
      stage23.emplace_back(enet::RegularSpec{.channels = ch, .padding = 4, .dilation = 4, .dropout = 0.1}, gen);
      stage23.emplace_back(enet::RegularSpec{.channels = ch, .dropout = 0.1}, gen);
      stage23.emplace_back(enet::RegularSpec{.channels = ch, .padding = 8, .dilation = 8, .dropout = 0.1}, gen);
      stage23.emplace_back(enet::RegularSpec{.channels = ch, .kernel = 5, .padding = 2, .asymmetric = true, .dropout = 0.1}, gen);
      stage23.emplace_back(enet::RegularSpec{.channels = ch, .padding = 16, .dilation = 16, .dropout = 0.1}, gen);
    }
    return 0;
  }
  int make_stage4(const ENetSpec& s, Generator& gen) {
    for (int i = 0; i < 2; ++i) stage4.emplace_back(enet::RegularSpec{.channels = c(s, 64), .dropout = 0.1}, gen);
    return 0;
  }
  int make_stage5(const ENetSpec& s, Generator& gen) {
    stage5.emplace_back(enet::RegularSpec{.channels = c(s, 16), .dropout = 0.1}, gen);
    return 0;
  }
};

}  // namespace gkd::models
