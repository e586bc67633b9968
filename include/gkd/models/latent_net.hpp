// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// P-SAE `LatentNet` (method.md §3.1): the teacher's SK encoder (conv1..conv4, bottleneck c4), then a
/// purely linear decoder (transposed convs up7, up8, up9 without activations, then Dropout2d(0.5) +
/// 1x1 conv in `conv10`), no skips. Only the modules the official forward uses are built, so the
/// parameter count is the "used" 26.83 M at width 1 (the official class also instantiates conv7..9
/// and a BatchNorm(512) that nothing calls; non-strict loading of an official checkpoint skips them).
/// @code
///   gkd::Generator gen(0);
///   gkd::models::LatentNet<float> psae({.width = 0.125}, gen);
///   auto out = psae.forward(mask);        // out.c4 [N, 64, H/8, W/8], out.reconstruction [N, 1, H, W]
///   auto again = psae.decode(out.c4);     // the frozen decoder MSAN regularises through
/// @endcode
#include "gkd/models/sk_blocks.hpp"

namespace gkd::models {

struct LatentNetSpec {
  double width = 1.0;
  std::int64_t in_channels = 1;
  std::int64_t out_channels = 1;
};

template <Real T>
struct LatentNet {
  using value_type = T;
  struct Output {
    Tensor<T> c4, reconstruction;
  };

  SKDoubleConv<T> conv1, conv2, conv3, conv4;
  nn::ConvTranspose2d<T> up7, up8, up9;
  nn::Sequential<nn::Dropout2d<T>, nn::Conv2d<T>> conv10;

  LatentNet(const LatentNetSpec& s, Generator& gen)
      : LatentNet(s, gen, nn::scaled(64, s.width), nn::scaled(128, s.width), nn::scaled(256, s.width),
                  nn::scaled(512, s.width)) {}

  Tensor<T> encode(const Tensor<T>& x) {
    const Tensor<T> c1 = conv1.forward(x);
    const Tensor<T> c2 = conv2.forward(max_pool2d(c1, 2));
    const Tensor<T> c3 = conv3.forward(max_pool2d(c2, 2));
    return conv4.forward(max_pool2d(c3, 2));
  }
  /// The official `Decode(re_middle)`.
  Tensor<T> decode(const Tensor<T>& c4) { return conv10.forward(up9.forward(up8.forward(up7.forward(c4)))); }
  Output forward(const Tensor<T>& x) {
    Output o;
    o.c4 = encode(x);
    o.reconstruction = decode(o.c4);
    return o;
  }
  template <class V>
  void visit(V& v) {
    v.child("conv1", conv1);
    v.child("conv2", conv2);
    v.child("conv3", conv3);
    v.child("conv4", conv4);
    v.child("up7", up7);
    v.child("up8", up8);
    v.child("up9", up9);
    v.child("conv10", conv10);
  }

 private:
  LatentNet(const LatentNetSpec& s, Generator& gen, std::int64_t c1, std::int64_t c2, std::int64_t c3, std::int64_t c4)
      : conv1(s.in_channels, c1, gen), conv2(c1, c2, gen), conv3(c2, c3, gen), conv4(c3, c4, gen),
        up7({.in = c4, .out = c3, .kernel = 2, .stride = 2}, gen),
        up8({.in = c3, .out = c2, .kernel = 2, .stride = 2}, gen),
        up9({.in = c2, .out = c1, .kernel = 2, .stride = 2}, gen),
        conv10(nn::Dropout2d<T>({.p = 0.5}, gen), nn::Conv2d<T>({.in = c1, .out = s.out_channels, .kernel = 1}, gen)) {
    xavier_conv_init(*this, gen);
  }
};

}  // namespace gkd::models
