// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The GKD teacher `UnetSKA2` (method.md §10.1): an SK-block U-Net with strip pooling in the decoder,
/// 38,290,xxx parameters at width 1 (tested exactly). Children and state_dict keys are the official
/// ones (`conv1.conv.0.conv2.0.conv_se.1.running_var`, `pam3.conv2_5.0.weight`, ...). The auxiliary
/// head `conv11` is instantiated (its keys exist) but, as its output is discarded by the official
/// forward, it is not computed.
///
/// `encode(x)` gives the skips and bottleneck c4; `decode(c4, skips)` runs the decoder from any
/// bottleneck of c4's shape (DICD feeds the reconstruction from the student there).
/// @code
///   gkd::Generator gen(0);
///   gkd::models::UnetSKA2<float> teacher({.width = 0.125}, gen);
///   auto out = teacher.forward(x);       // out.logits [N, 2, H, W], out.c4 [N, 64, H/8, W/8]
///   gkd::nn::freeze(teacher);
/// @endcode
#include "gkd/models/sk_blocks.hpp"

namespace gkd::models {

struct UnetSKA2Spec {
  double width = 1.0;       ///< channel multiplier (64, 128, 256, 512 scaled; at least 1)
  std::int64_t in_channels = 1;
  std::int64_t classes = 2;
};

template <Real T>
struct UnetSKA2 {
  using value_type = T;
  struct Output {
    Tensor<T> c3, up7, logits, c4;  ///< the official return (c3, up_7, c10) plus the bottleneck
  };

  SKDoubleConv<T> conv1, conv2, conv3, conv4;
  nn::ConvTranspose2d<T> up7;
  SKDoubleConv<T> conv7;
  nn::ConvTranspose2d<T> up8;
  SKDoubleConv<T> conv8;
  nn::ConvTranspose2d<T> up9;
  SKDoubleConv<T> conv9;
  nn::Sequential<nn::Dropout2d<T>, nn::Conv2d<T>> conv10, conv11;
  StripPooling<T, false> pam1, pam2;
  StripPooling<T, true> pam3;

  UnetSKA2(const UnetSKA2Spec& s, Generator& gen)
      : UnetSKA2(s, gen, nn::scaled(64, s.width), nn::scaled(128, s.width), nn::scaled(256, s.width),
                 nn::scaled(512, s.width)) {}

  SKEncoderFeatures<T> encode(const Tensor<T>& x) {
    SKEncoderFeatures<T> f;
    f.c1 = conv1.forward(x);
    f.c2 = conv2.forward(max_pool2d(f.c1, 2));
    f.c3 = conv3.forward(max_pool2d(f.c2, 2));
    f.c4 = conv4.forward(max_pool2d(f.c3, 2));
    return f;
  }
  /// The decoder from bottleneck `c4` with the skips of `skips` (c1..c3).
  Output decode(const Tensor<T>& c4, const SKEncoderFeatures<T>& skips) {
    Output o;
    o.c3 = skips.c3;
    o.c4 = c4;
    o.up7 = up7.forward(c4);
    const Tensor<T> c7 = pam1.forward(conv7.forward(concat({o.up7, skips.c3}, 1)));
    const Tensor<T> c8 = pam2.forward(conv8.forward(concat({up8.forward(c7), skips.c2}, 1)));
    const Tensor<T> c9 = pam3.forward(conv9.forward(concat({up9.forward(c8), skips.c1}, 1)));
    o.logits = conv10.forward(c9);
    return o;
  }
  Output forward(const Tensor<T>& x) {
    const SKEncoderFeatures<T> f = encode(x);
    return decode(f.c4, f);
  }
  template <class V>
  void visit(V& v) {
    v.child("conv1", conv1);
    v.child("conv2", conv2);
    v.child("conv3", conv3);
    v.child("conv4", conv4);
    v.child("up7", up7);
    v.child("conv7", conv7);
    v.child("up8", up8);
    v.child("conv8", conv8);
    v.child("up9", up9);
    v.child("conv9", conv9);
    v.child("conv10", conv10);
    v.child("conv11", conv11);
    v.child("pam1", pam1);
    v.child("pam2", pam2);
    v.child("pam3", pam3);
  }

 private:
  UnetSKA2(const UnetSKA2Spec& s, Generator& gen, std::int64_t c1, std::int64_t c2, std::int64_t c3, std::int64_t c4)
      : conv1(s.in_channels, c1, gen), conv2(c1, c2, gen), conv3(c2, c3, gen), conv4(c3, c4, gen),
        up7({.in = c4, .out = c3, .kernel = 2, .stride = 2}, gen), conv7(2 * c3, c3, gen),
        up8({.in = c3, .out = c2, .kernel = 2, .stride = 2}, gen), conv8(2 * c2, c2, gen),
        up9({.in = c2, .out = c1, .kernel = 2, .stride = 2}, gen), conv9(2 * c1, c1, gen),
        conv10(nn::Dropout2d<T>({.p = 0.5}, gen), nn::Conv2d<T>({.in = c1, .out = s.classes, .kernel = 1}, gen)),
        conv11(nn::Dropout2d<T>({.p = 0.5}, gen), nn::Conv2d<T>({.in = c1, .out = s.classes, .kernel = 1}, gen)),
        pam1(c3, 3, 6, gen), pam2(c2, 12, 18, gen), pam3(c1, 3, 6, gen) {
    xavier_conv_init(*this, gen);
  }
};

}  // namespace gkd::models
