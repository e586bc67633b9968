// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The plain `UNet` of the official code (alternative teacher): double 3x3 conv (+BN+ReLU) blocks,
/// four 2x2 max-pool levels, transposed-conv up blocks concatenating [skip, upsampled], Dropout2d(0.5)
/// + 1x1 head; Kaiming-normal (ReLU) conv init. 31.04 M parameters at width 1. Returns (c4, c7, logits).
/// @code
///   gkd::Generator gen(0);
///   gkd::models::UNet<float> net({.width = 0.125}, gen);
///   auto out = net.forward(x);   // out.logits [N, 2, H, W]; H and W divisible by 16
/// @endcode
#include "gkd/models/blocks.hpp"

namespace gkd::models {

template <Real T>
struct UNetDoubleConv {
  using value_type = T;
  nn::Sequential<nn::Conv2d<T>, nn::BatchNorm2d<T>, nn::ReLU<T>, nn::Conv2d<T>, nn::BatchNorm2d<T>, nn::ReLU<T>> conv;
  UNetDoubleConv(std::int64_t in, std::int64_t out, Generator& gen)
      : conv(nn::Conv2d<T>({.in = in, .out = out, .kernel = 3, .padding = 1}, gen), nn::BatchNorm2d<T>({.channels = out}),
             {}, nn::Conv2d<T>({.in = out, .out = out, .kernel = 3, .padding = 1}, gen),
             nn::BatchNorm2d<T>({.channels = out}), {}) {}
  Tensor<T> forward(const Tensor<T>& x) { return conv.forward(x); }
  template <class V>
  void visit(V& v) {
    v.child("conv", conv);
  }
};

template <Real T>
struct UNetUpBlock {
  using value_type = T;
  nn::ConvTranspose2d<T> upsample;
  UNetDoubleConv<T> conv;
  UNetUpBlock(std::int64_t in, std::int64_t skip, std::int64_t out, Generator& gen)
      : upsample({.in = in, .out = out, .kernel = 2, .stride = 2}, gen), conv(skip + out, out, gen) {}
  Tensor<T> forward(const Tensor<T>& x, const Tensor<T>& skip) {
    const Tensor<T> up = upsample.forward(x);
    GKD_CHECK(up.shape()[2] == skip.shape()[2] && up.shape()[3] == skip.shape()[3], "UNet",
              "upsampled " << to_string(up.shape()) << " does not match skip " << to_string(skip.shape())
                           << " (input sides must be divisible by 16)");
    return conv.forward(concat({skip, up}, 1));
  }
  template <class V>
  void visit(V& v) {
    v.child("upsample", upsample);
    v.child("conv", conv);
  }
};

struct UNetSpec {
  double width = 1.0;
  std::int64_t in_channels = 1;
  std::int64_t classes = 2;
};

template <Real T>
struct UNet {
  using value_type = T;
  struct Output {
    Tensor<T> c4, c7, logits;
  };
  UNetDoubleConv<T> conv1, conv2, conv3, conv4, conv5;
  UNetUpBlock<T> up1, up2, up3, up4;
  nn::Sequential<nn::Dropout2d<T>, nn::Conv2d<T>> conv14;

  UNet(const UNetSpec& s, Generator& gen)
      : conv1(s.in_channels, c(s, 64), gen), conv2(c(s, 64), c(s, 128), gen), conv3(c(s, 128), c(s, 256), gen),
        conv4(c(s, 256), c(s, 512), gen), conv5(c(s, 512), c(s, 1024), gen),
        up1(c(s, 1024), c(s, 512), c(s, 512), gen), up2(c(s, 512), c(s, 256), c(s, 256), gen),
        up3(c(s, 256), c(s, 128), c(s, 128), gen), up4(c(s, 128), c(s, 64), c(s, 64), gen),
        conv14(nn::Dropout2d<T>({.p = 0.5}, gen), nn::Conv2d<T>({.in = c(s, 64), .out = s.classes, .kernel = 1}, gen)) {
    nn::for_each_module(*this, [&](auto& m) {
      if constexpr (is_conv2d<std::remove_cvref_t<decltype(m)>>)
        nn::init::kaiming_normal_(m.weight, gen, 0.0, nn::init::FanMode::FanIn, nn::init::Nonlinearity::Relu);
    });
  }
  Output forward(const Tensor<T>& x) {
    Output o;
    const Tensor<T> c1 = conv1.forward(x);
    const Tensor<T> c2 = conv2.forward(max_pool2d(c1, 2));
    const Tensor<T> c3 = conv3.forward(max_pool2d(c2, 2));
    o.c4 = conv4.forward(max_pool2d(c3, 2));
    const Tensor<T> c5 = conv5.forward(max_pool2d(o.c4, 2));
    o.c7 = up2.forward(up1.forward(c5, o.c4), c3);
    o.logits = conv14.forward(up4.forward(up3.forward(o.c7, c2), c1));
    return o;
  }
  template <class V>
  void visit(V& v) {
    v.child("conv1", conv1);
    v.child("conv2", conv2);
    v.child("conv3", conv3);
    v.child("conv4", conv4);
    v.child("conv5", conv5);
    v.child("up1", up1);
    v.child("up2", up2);
    v.child("up3", up3);
    v.child("up4", up4);
    v.child("conv14", conv14);
  }

 private:
  static std::int64_t c(const UNetSpec& s, std::int64_t channels) { return nn::scaled(channels, s.width); }
};

}  // namespace gkd::models
