// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The teacher's building blocks (method.md §10.1), with PyTorch's child names:
/// - `SKConv(C)`: 5x5 and 3x3 branches (conv+BN+ReLU), global pool of their sum, 1x1 C -> C/2 (+BN+ReLU),
///   two 1x1 C/2 -> C logits, softmax over the two branches, weighted sum;
/// - `SKBlock(in, planes)`: 1x1 (+BN+ReLU) -> SKConv (+BN+ReLU) -> 1x1 (+BN), plus the shortcut
///   (1x1 + BN projection when given), ReLU;
/// - `SKDoubleConv(in, out)`: SKBlock with projection, then SKBlock (children "conv.0", "conv.1");
/// - `StripPooling<T, false>(C, p1, p2)` and its variant `StripPooling<T, true>` (StripPooling2).
/// @code
///   gkd::Generator gen(0);
///   gkd::models::SKDoubleConv<double> block(1, 8, gen);
///   auto y = block.forward(x);   // x [N, 1, H, W] -> [N, 8, H, W]
/// @endcode
#include <optional>

#include "gkd/models/blocks.hpp"
#include "gkd/ops/reduce.hpp"

namespace gkd::models {

template <Real T>
struct SKConv {
  using value_type = T;
  ConvBnRelu<T> conv1, conv2, conv_se;
  nn::Sequential<nn::Conv2d<T>> conv_ex1, conv_ex2;

  SKConv(std::int64_t c, Generator& gen)
      : conv1(conv_bn_act<T>({.in = c, .out = c, .kernel = 5, .padding = 2}, gen)),
        conv2(conv_bn_act<T>({.in = c, .out = c, .kernel = 3, .padding = 1}, gen)),
        conv_se(conv_bn_act<T>({.in = c, .out = checked_half(c), .kernel = 1}, gen)),
        conv_ex1(nn::Conv2d<T>({.in = c / 2, .out = c, .kernel = 1}, gen)),
        conv_ex2(nn::Conv2d<T>({.in = c / 2, .out = c, .kernel = 1}, gen)) {}
  static std::int64_t checked_half(std::int64_t c) {
    GKD_CHECK(c >= 2, "SKConv", "needs at least 2 channels (reduction 2), got " << c);
    return c / 2;
  }
  std::int64_t in_channels() const { return conv1.template get<0>().spec.in; }
  std::int64_t out_channels() const { return in_channels(); }
  Tensor<T> forward(const Tensor<T>& x) {
    const Tensor<T> features = stack({conv1.forward(x), conv2.forward(x)}, 1);  // [N, 2, C, H, W]
    const Tensor<T> u = sum(features, {1});
    const Tensor<T> z = conv_se.forward(mean(u, {2, 3}, true));
    const Tensor<T> attention = softmax(stack({conv_ex1.forward(z), conv_ex2.forward(z)}, 1), 1);
    return sum(mul(features, attention), {1});
  }
  template <class V>
  void visit(V& v) {
    v.child("conv1", conv1);
    v.child("conv2", conv2);
    v.child("conv_se", conv_se);
    v.child("conv_ex1", conv_ex1);
    v.child("conv_ex2", conv_ex2);
  }
};

template <Real T>
struct SKBlock {
  using value_type = T;
  ConvBnRelu<T> conv1;
  nn::Sequential<SKConv<T>, nn::BatchNorm2d<T>, nn::ReLU<T>> conv2;
  ConvBn<T> conv3;
  std::optional<ConvBn<T>> downsample;

  SKBlock(std::int64_t in, std::int64_t planes, bool project, Generator& gen)
      : conv1(conv_bn_act<T>({.in = in, .out = planes, .kernel = 1, .bias = false}, gen)),
        conv2(SKConv<T>(planes, gen), nn::BatchNorm2d<T>({.channels = planes}), {}),
        conv3(conv_bn<T>({.in = planes, .out = planes, .kernel = 1, .bias = false}, gen)) {
    if (project) downsample.emplace(conv_bn<T>({.in = in, .out = planes, .kernel = 1, .bias = false}, gen));
    GKD_CHECK(project || in == planes, "SKBlock",
              "an identity shortcut needs equal channels, got " << in << " in and " << planes << " out");
  }
  std::int64_t in_channels() const { return conv1.template get<0>().spec.in; }
  std::int64_t out_channels() const { return conv3.template get<0>().spec.out; }
  Tensor<T> forward(const Tensor<T>& x) {
    const Tensor<T> out = conv3.forward(conv2.forward(conv1.forward(x)));
    return relu(add(out, downsample ? downsample->forward(x) : x));
  }
  template <class V>
  void visit(V& v) {
    v.child("conv1", conv1);
    v.child("conv2", conv2);
    v.child("conv3", conv3);
    if (downsample) v.child("downsample", *downsample);
  }
};

template <Real T>
struct SKDoubleConv {
  using value_type = T;
  nn::Sequential<SKBlock<T>, SKBlock<T>> conv;
  SKDoubleConv(std::int64_t in, std::int64_t out, Generator& gen)
      : conv(SKBlock<T>(in, out, true, gen), SKBlock<T>(out, out, false, gen)) {}
  Tensor<T> forward(const Tensor<T>& x) { return conv.forward(x); }
  template <class V>
  void visit(V& v) {
    v.child("conv", conv);
  }
};

/// SPNet-style strip pooling; `Variant2` is the teacher's StripPooling2 (half-width pooled branches
/// concatenated, and the strip branch multiplied by the input).
template <Real T, bool Variant2>
struct StripPooling {
  using value_type = T;
  Size2 pool1, pool2;
  Tensor<T> gamma = Tensor<T>::zeros({1}).requires_grad();  // created but unused, as the official code
  ConvBnRelu<T> conv1_1, conv1_2;
  ConvBn<T> conv2_0, conv2_1, conv2_2, conv2_3, conv2_4;
  ConvBnRelu<T> conv2_5, conv2_6;
  ConvBn<T> conv3;

  StripPooling(std::int64_t c, Size2 p1, Size2 p2, Generator& gen)
      : pool1(p1), pool2(p2),
        conv1_1(conv_bn_act<T>({.in = c, .out = c, .kernel = 1, .bias = false}, gen)),
        conv1_2(conv_bn_act<T>({.in = c, .out = c, .kernel = 1, .bias = false}, gen)),
        conv2_0(conv_bn<T>({.in = c, .out = c, .kernel = 3, .padding = 1, .bias = false}, gen)),
        conv2_1(conv_bn<T>({.in = c, .out = pooled(c), .kernel = 3, .padding = 1, .bias = false}, gen)),
        conv2_2(conv_bn<T>({.in = c, .out = pooled(c), .kernel = 3, .padding = 1, .bias = false}, gen)),
        conv2_3(conv_bn<T>({.in = c, .out = c, .kernel = {1, 3}, .padding = {0, 1}, .bias = false}, gen)),
        conv2_4(conv_bn<T>({.in = c, .out = c, .kernel = {3, 1}, .padding = {1, 0}, .bias = false}, gen)),
        conv2_5(conv_bn_act<T>({.in = Variant2 ? 2 * c : c, .out = c, .kernel = 3, .padding = 1, .bias = false}, gen)),
        conv2_6(conv_bn_act<T>({.in = c, .out = c, .kernel = 3, .padding = 1, .bias = false}, gen)),
        conv3(conv_bn<T>({.in = 2 * c, .out = c, .kernel = 1, .bias = false}, gen)) {}
  static std::int64_t pooled(std::int64_t c) {
    if (!Variant2) return c;
    GKD_CHECK(c % 2 == 0, "StripPooling2", "needs an even channel count, got " << c);
    return c / 2;
  }
  Tensor<T> forward(const Tensor<T>& x) {
    const Size2 hw{x.shape()[2], x.shape()[3]};
    auto back = [&](const Tensor<T>& t) { return upsample_nearest2d(t, hw); };
    const Tensor<T> x1 = conv1_1.forward(x), x2 = conv1_2.forward(x);
    const Tensor<T> a = conv2_0.forward(x1);
    const Tensor<T> b = back(conv2_1.forward(adaptive_avg_pool2d(x1, pool1)));
    const Tensor<T> c = back(conv2_2.forward(adaptive_avg_pool2d(x1, pool2)));
    const Tensor<T> d = back(conv2_3.forward(adaptive_avg_pool2d(x2, Size2{std::int64_t{1}, hw.w})));
    const Tensor<T> e = back(conv2_4.forward(adaptive_avg_pool2d(x2, Size2{hw.h, std::int64_t{1}})));
    const Tensor<T> y1 = conv2_5.forward(relu(Variant2 ? concat({a, b, c}, 1) : add(add(a, b), c)));
    Tensor<T> y2 = conv2_6.forward(relu(add(e, d)));
    if (Variant2) y2 = mul(x, y2);
    return relu(add(x, conv3.forward(concat({y1, y2}, 1))));
  }
  template <class V>
  void visit(V& v) {
    v.parameter("gamma", gamma);
    v.child("conv1_1", conv1_1);
    v.child("conv1_2", conv1_2);
    v.child("conv2_0", conv2_0);
    v.child("conv2_1", conv2_1);
    v.child("conv2_2", conv2_2);
    v.child("conv2_3", conv2_3);
    v.child("conv2_4", conv2_4);
    v.child("conv2_5", conv2_5);
    v.child("conv2_6", conv2_6);
    v.child("conv3", conv3);
  }
};

/// The SK encoder shared by the teacher and P-SAE: conv1..conv4 with 2x2 max pooling between.
template <Real T>
struct SKEncoderFeatures {
  Tensor<T> c1, c2, c3, c4;
};

}  // namespace gkd::models
